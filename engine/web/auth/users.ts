/** Web users: a name, a role and an argon2id password hash (cairn.web_user). */
import { NOTIFY_CREDENTIALS_SQL, localCredentialChange } from '../../store/cache-notify.ts'
import type { Queryable } from '../../store/queryable.ts'
import { hashPassword, verifyNobody, verifyPassword } from './passwords.ts'
import type { Role } from './roles.ts'

export interface UserRow {
  username: string
  role: Role
  disabled: boolean
  createdAt: Date
}

type RawUser = { username: string; role: Role; disabled: boolean; created_at: Date }
const toUser = (r: RawUser): UserRow => ({ username: r.username, role: r.role, disabled: r.disabled, createdAt: r.created_at })

/** Creates a user; undefined when the name is taken. The password must already satisfy passwordProblem. */
export async function createUser(q: Queryable, input: { username: string; role: Role; password: string }): Promise<UserRow | undefined> {
  const passwordHash = await hashPassword(input.password)
  const { rows } = await q.query<RawUser>(
    `INSERT INTO cairn.web_user (username, role, password_hash) VALUES ($1, $2, $3)
     ON CONFLICT (username) DO NOTHING RETURNING username, role, disabled, created_at`,
    [input.username, input.role, passwordHash],
  )
  return rows[0] ? toUser(rows[0]) : undefined
}

export async function listUsers(q: Queryable): Promise<UserRow[]> {
  const { rows } = await q.query<RawUser>('SELECT username, role, disabled, created_at FROM cairn.web_user ORDER BY username')
  return rows.map(toUser)
}

export async function getUser(q: Queryable, username: string): Promise<UserRow | undefined> {
  const { rows } = await q.query<RawUser>('SELECT username, role, disabled, created_at FROM cairn.web_user WHERE username = $1', [username])
  return rows[0] ? toUser(rows[0]) : undefined
}

export async function hasActiveAdmin(q: Queryable): Promise<boolean> {
  const { rows } = await q.query(`SELECT 1 FROM cairn.web_user WHERE role = 'admin' AND NOT disabled LIMIT 1`)
  return rows.length > 0
}

/** The user when the name exists, is not disabled and the password matches; every refusal takes about as long. */
export async function checkLogin(q: Queryable, username: string, password: string): Promise<UserRow | undefined> {
  const { rows } = await q.query<RawUser & { password_hash: string }>(
    'SELECT username, role, disabled, created_at, password_hash FROM cairn.web_user WHERE username = $1',
    [username],
  )
  const row = rows[0]
  if (!row) return verifyNobody(password).then(() => undefined)
  const ok = await verifyPassword(row.password_hash, password)
  return ok && !row.disabled ? toUser(row) : undefined
}

/**
 * Disables or enables a user; false when there is no such user. Disabling ends the user's sessions
 * (deleted here) and stops the tokens the user owns (they are checked against the owner on every use;
 * the same statement notifies web processes, which forget the tokens they had verified).
 */
export async function setUserDisabled(q: Queryable, username: string, disabled: boolean): Promise<boolean> {
  const { rows } = await q.query<{ n: number }>(
    `WITH u AS (UPDATE cairn.web_user SET disabled = $2, updated_at = now() WHERE username = $1 RETURNING 1)
     SELECT n, CASE WHEN n > 0 THEN ${NOTIFY_CREDENTIALS_SQL} END FROM (SELECT count(*)::int AS n FROM u) c`,
    [username, disabled],
  )
  localCredentialChange()
  if (rows[0]!.n === 0) return false
  if (disabled) await q.query('DELETE FROM cairn.web_session WHERE username = $1', [username])
  return true
}

/** Whether an admin other than `username` is active (disabling the last one through the API would lock the API out). */
export async function hasOtherActiveAdmin(q: Queryable, username: string): Promise<boolean> {
  const { rows } = await q.query(`SELECT 1 FROM cairn.web_user WHERE role = 'admin' AND NOT disabled AND username <> $1 LIMIT 1`, [username])
  return rows.length > 0
}
