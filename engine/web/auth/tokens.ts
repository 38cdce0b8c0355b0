/**
 * API tokens for scripts (`Authorization: Bearer cairn_...`). The token is shown once, when created;
 * the database keeps its SHA-256 digest, which is enough to recognise it and useless to steal.
 *
 * A token is live while it is not revoked, not past its `expires_at` and its owner (the user who made
 * it through the API, if any) is not disabled. A web process keeps a verified token for a moment
 * (token-cache.ts); revoking and disabling notify every web process through the database, and expiry
 * is checked on every use, so they take effect on the next request; open streams are re-checked by
 * credential-watch.ts.
 */
import type { Queryable } from '../../store/queryable.ts'
import type { Role } from './roles.ts'
import { NOTIFY_CREDENTIALS_SQL, localCredentialChange } from '../../store/cache-notify.ts'
import { randomSecret, sha256 } from './secret-ids.ts'

const TOKEN_PREFIX = 'cairn_'

export interface TokenRow {
  tokenId: number
  name: string
  role: Role
  createdAt: Date
  expiresAt: Date | null
  /** The user it belongs to, if any. */
  owner: string | null
}

export interface TokenListing extends TokenRow {
  createdBy: string | null
  lastUsedAt: Date | null
  revokedAt: Date | null
  /** The owner is disabled, so the token does not work. */
  ownerDisabled: boolean
}

/** The SQL condition for "this token may be used now" (`t` is cairn.api_token). */
const LIVE_TOKEN = `t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
  AND (t.owner IS NULL OR EXISTS (SELECT 1 FROM cairn.web_user o WHERE o.username = t.owner AND NOT o.disabled))`

type RawToken = { token_id: string; name: string; role: Role; created_at: Date; expires_at: Date | null; owner: string | null }
const toToken = (r: RawToken): TokenRow => ({ tokenId: Number(r.token_id), name: r.name, role: r.role, createdAt: r.created_at, expiresAt: r.expires_at, owner: r.owner })

export interface NewToken {
  name: string
  role: Role
  /** Who made it, for the record ("cli", "user alice", "token deploy"). */
  createdBy?: string
  /** The user it belongs to: disabling that user stops the token. */
  owner?: string | null
  /** Lifetime from now; absent: it never expires. */
  expiresInMs?: number
}

/** Creates a token; undefined when a live token has this name. `token` is the only copy of the secret. */
export async function createToken(q: Queryable, input: NewToken): Promise<{ token: string; row: TokenRow } | undefined> {
  const token = randomSecret(TOKEN_PREFIX)
  const { rows } = await q.query<RawToken>(
    `INSERT INTO cairn.api_token (name, role, token_hash, created_by, owner, expires_at)
     VALUES ($1, $2, $3, $4, $5, now() + $6 * interval '1 millisecond')
     ON CONFLICT (name) WHERE revoked_at IS NULL DO NOTHING RETURNING token_id, name, role, created_at, expires_at, owner`,
    [input.name, input.role, sha256(token), input.createdBy ?? null, input.owner ?? null, input.expiresInMs ?? null],
  )
  return rows[0] ? { token, row: toToken(rows[0]) } : undefined
}

/**
 * The live token this secret belongs to. Records its use at most once a minute (not a write per
 * request): the check is a plain read, and only a token not recorded for a minute also gets the
 * update, so the per-request cost is one indexed SELECT (a data-modifying CTE on every request
 * measured about half as fast under 50 concurrent requests).
 */
export async function findToken(q: Queryable, token: string): Promise<TokenRow | undefined> {
  return findTokenByHash(q, sha256(token))
}

/** findToken by the token's SHA-256 digest. */
export async function findTokenByHash(q: Queryable, tokenHash: Buffer): Promise<TokenRow | undefined> {
  const { rows } = await q.query<RawToken & { record_use: boolean }>(
    `SELECT token_id, name, role, created_at, expires_at, owner, (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') AS record_use
       FROM cairn.api_token t WHERE t.token_hash = $1 AND ${LIVE_TOKEN}`,
    [tokenHash],
  )
  const row = rows[0]
  if (!row) return undefined
  if (row.record_use) {
    await q.query(`UPDATE cairn.api_token SET last_used_at = now() WHERE token_id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, [row.token_id])
  }
  return toToken(row)
}

/** Of these token ids, the ones still live now. */
export async function liveTokenIds(q: Queryable, tokenIds: readonly number[]): Promise<Set<number>> {
  if (tokenIds.length === 0) return new Set()
  const { rows } = await q.query<{ token_id: string }>(`SELECT token_id FROM cairn.api_token t WHERE t.token_id = ANY($1::bigint[]) AND ${LIVE_TOKEN}`, [tokenIds])
  return new Set(rows.map((r) => Number(r.token_id)))
}

/** Tokens, newest first: the live ones (expired included, they can be seen and revoked), and with `all` the revoked ones too. */
export async function listTokens(q: Queryable, options: { all?: boolean } = {}): Promise<TokenListing[]> {
  const { rows } = await q.query<RawToken & { created_by: string | null; last_used_at: Date | null; revoked_at: Date | null; owner_disabled: boolean }>(
    `SELECT t.token_id, t.name, t.role, t.created_at, t.expires_at, t.created_by, t.owner, t.last_used_at, t.revoked_at, coalesce(o.disabled, false) AS owner_disabled
     FROM cairn.api_token t LEFT JOIN cairn.web_user o ON o.username = t.owner
     WHERE $1 OR t.revoked_at IS NULL ORDER BY t.created_at DESC, t.token_id DESC`,
    [options.all === true],
  )
  return rows.map((r) => ({ ...toToken(r), createdBy: r.created_by, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at, ownerDisabled: r.owner_disabled }))
}

/**
 * Revokes the live token of this name; false when there is none. The same statement notifies the web
 * processes (sent when it commits), and caches of this process forget their tokens at once.
 */
export async function revokeToken(q: Queryable, name: string): Promise<boolean> {
  const { rows } = await q.query<{ n: number }>(
    `WITH r AS (UPDATE cairn.api_token SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING 1)
     SELECT n, CASE WHEN n > 0 THEN ${NOTIFY_CREDENTIALS_SQL} END FROM (SELECT count(*)::int AS n FROM r) c`,
    [name],
  )
  localCredentialChange()
  return rows[0]!.n > 0
}

/** What a listing shows as the token's state. */
export function tokenState(token: TokenListing, now: Date): 'active' | 'expired' | 'revoked' | 'owner_disabled' {
  if (token.revokedAt) return 'revoked'
  if (token.expiresAt && token.expiresAt <= now) return 'expired'
  return token.ownerDisabled ? 'owner_disabled' : 'active'
}
