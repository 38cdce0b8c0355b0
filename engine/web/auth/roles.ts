/**
 * Roles of web users and API tokens, each allowed everything the one before it may do:
 *   viewer    reads (DAGs, runs, task instances, logs)
 *   operator  also triggers, cancels and clears runs and pauses and unpauses DAGs
 *   admin     also manages users and tokens
 */
export const ROLES = ['viewer', 'operator', 'admin'] as const
export type Role = (typeof ROLES)[number]

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value)
}

/** True when `have` may do what needs `need`. */
export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need)
}

/** Users and tokens share one name rule (also a CHECK in 0003_auth.sql). */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$'
const NAME = new RegExp(NAME_PATTERN)

export function isValidName(name: string): boolean {
  return NAME.test(name)
}
