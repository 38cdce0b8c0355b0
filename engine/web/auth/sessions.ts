/**
 * Browser sessions. The cookie holds a random id; the database keeps its SHA-256 digest with the user
 * and an expiry. The CSRF token is derived from the id (a digest the database does not hold), so it
 * needs no storage, dies with the session, and a stolen database yields neither.
 */
import type { Queryable } from '../../store/queryable.ts'
import type { Role } from './roles.ts'
import { randomSecret, sha256 } from './secret-ids.ts'

export const SESSION_COOKIE = 'cairn_session'
/** @default 12 hours: a working day, then log in again. */
export const DEFAULT_SESSION_TTL_MS = 12 * 3600_000

export interface Session {
  username: string
  role: Role
  expiresAt: Date
}

export function csrfTokenFor(sessionId: string): string {
  return sha256(`cairn-csrf\0${sessionId}`).toString('base64url')
}

/** A new session for `username`; returns the id for the cookie (the only copy). Expired sessions are swept here. */
export async function createSession(q: Queryable, username: string, ttlMs: number): Promise<{ sessionId: string; expiresAt: Date }> {
  const sessionId = randomSecret()
  const { rows } = await q.query<{ expires_at: Date }>(
    `INSERT INTO cairn.web_session (session_hash, username, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond') RETURNING expires_at`,
    [sha256(sessionId), username, ttlMs],
  )
  await q.query('DELETE FROM cairn.web_session WHERE expires_at < now()')
  return { sessionId, expiresAt: rows[0]!.expires_at }
}

/** The live session of this id; a disabled user's sessions are dead too. */
export async function findSession(q: Queryable, sessionId: string): Promise<Session | undefined> {
  const { rows } = await q.query<{ username: string; role: Role; expires_at: Date }>(
    `SELECT s.username, u.role, s.expires_at FROM cairn.web_session s JOIN cairn.web_user u USING (username)
     WHERE s.session_hash = $1 AND s.expires_at > now() AND NOT u.disabled`,
    [sha256(sessionId)],
  )
  const r = rows[0]
  return r ? { username: r.username, role: r.role, expiresAt: r.expires_at } : undefined
}

export async function deleteSession(q: Queryable, sessionId: string): Promise<void> {
  await q.query('DELETE FROM cairn.web_session WHERE session_hash = $1', [sha256(sessionId)])
}
