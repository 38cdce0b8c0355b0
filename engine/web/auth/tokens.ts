/**
 * API tokens for scripts (`Authorization: Bearer cairn_...`). The token is shown once, when created;
 * the database keeps its SHA-256 digest, which is enough to recognise it and useless to steal.
 */
import type { Queryable } from '../../store/queryable.ts'
import type { Role } from './roles.ts'
import { randomSecret, sha256 } from './secret-ids.ts'

export const TOKEN_PREFIX = 'cairn_'

export interface TokenRow {
  tokenId: number
  name: string
  role: Role
  createdAt: Date
}

/** Creates a token; undefined when the name is taken. `token` is the only copy of the secret. */
export async function createToken(q: Queryable, input: { name: string; role: Role; createdBy?: string }): Promise<{ token: string; row: TokenRow } | undefined> {
  const token = randomSecret(TOKEN_PREFIX)
  const { rows } = await q.query<{ token_id: string; name: string; role: Role; created_at: Date }>(
    `INSERT INTO cairn.api_token (name, role, token_hash, created_by) VALUES ($1, $2, $3, $4)
     ON CONFLICT (name) DO NOTHING RETURNING token_id, name, role, created_at`,
    [input.name, input.role, sha256(token), input.createdBy ?? null],
  )
  const r = rows[0]
  return r ? { token, row: { tokenId: Number(r.token_id), name: r.name, role: r.role, createdAt: r.created_at } } : undefined
}

/** The live token this secret belongs to. Records its use at most once a minute (not a write per request). */
export async function findToken(q: Queryable, token: string): Promise<TokenRow | undefined> {
  const { rows } = await q.query<{ token_id: string; name: string; role: Role; created_at: Date }>(
    `WITH found AS (SELECT token_id, name, role, created_at, last_used_at FROM cairn.api_token WHERE token_hash = $1 AND revoked_at IS NULL),
     touched AS (UPDATE cairn.api_token t SET last_used_at = now() FROM found
       WHERE t.token_id = found.token_id AND (found.last_used_at IS NULL OR found.last_used_at < now() - interval '1 minute'))
     SELECT token_id, name, role, created_at FROM found`,
    [sha256(token)],
  )
  const r = rows[0]
  return r ? { tokenId: Number(r.token_id), name: r.name, role: r.role, createdAt: r.created_at } : undefined
}
