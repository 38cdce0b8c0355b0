/**
 * Password hashes: argon2id (@node-rs/argon2, its native binary ships inside the npm package) with the
 * library's defaults (19 MiB, 2 passes, 1 lane: OWASP's minimum for argon2id), about 70 ms a hash here.
 */
import { hash, verify } from '@node-rs/argon2'

export const MIN_PASSWORD_LENGTH = 8
/** Bounds the work an attacker can ask of a login (argon2 hashes any length, but reads all of it). */
export const MAX_PASSWORD_LENGTH = 1024

export function passwordProblem(password: string): string | undefined {
  if (password.length < MIN_PASSWORD_LENGTH) return `the password must have at least ${MIN_PASSWORD_LENGTH} characters`
  if (password.length > MAX_PASSWORD_LENGTH) return `the password must have at most ${MAX_PASSWORD_LENGTH} characters`
  return undefined
}

export function hashPassword(password: string): Promise<string> {
  return hash(password)
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password)
  } catch {
    return false // a malformed stored hash lets nobody in
  }
}

let dummy: Promise<string> | undefined

/**
 * Spends the time of one verification without a user to verify, so an unknown user name takes as long
 * to refuse as a wrong password (the answer's timing does not tell which names exist).
 */
export async function verifyNobody(password: string): Promise<false> {
  await verifyPassword(await (dummy ??= hashPassword('cairn-no-such-user')), password)
  return false
}
