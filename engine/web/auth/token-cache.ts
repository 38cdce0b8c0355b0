/**
 * Bearer tokens this web process verified a moment ago, so that a burst of API calls with one token
 * costs one database check, not one per request. Keyed by the token's SHA-256 digest in base64 (the
 * secret itself is not kept).
 *
 * An entry answers only while all of these hold, so a dead credential is refused on its next request:
 * - it is younger than `ttlMs` (a backstop; 2 s by default, the open streams' re-check interval);
 * - the token's `expires_at` has not passed (checked on every use);
 * - no credential change was announced since it was verified: revoking a token and disabling or
 *   enabling a user send a NOTIFY (store/cache-notify.ts) that empties the cache of every web process,
 *   and changes made in this process empty it at once;
 * - the notification feed is live (cache-feed.ts): while its connection is down, every request is
 *   checked against the database.
 *
 * A check that started before a change and answers after it is not cached (the generation it
 * started under is gone).
 */
import type { TokenRow } from './tokens.ts'

export interface TokenCache {
  /** The live token of this digest, when verified recently enough; undefined: ask the database. */
  get(digest: string): TokenRow | undefined
  /** Call before asking the database; pass the result to `set`. */
  generation(): number
  set(digest: string, row: TokenRow, generation: number): void
  /** Forgets every token (a credential changed, or notifications may have been missed). */
  clear(): void
  readonly size: number
}

export interface TokenCacheOptions {
  /** How long a verified token is reused; 0 turns the cache off. @default 2000 */
  ttlMs?: number
  /** Tokens kept at most (the oldest verified goes first). @default 10000 */
  maxEntries?: number
  /** Whether credential notifications are being received now. */
  isLive: () => boolean
  now?: () => number
}

export function createTokenCache(options: TokenCacheOptions): TokenCache {
  const ttlMs = options.ttlMs ?? 2000
  const maxEntries = options.maxEntries ?? 10_000
  const now = options.now ?? Date.now
  const entries = new Map<string, { row: TokenRow; verifiedAt: number }>()
  let generation = 0
  return {
    get(digest) {
      if (ttlMs <= 0 || entries.size === 0 || !options.isLive()) return undefined
      const key = digest
      const entry = entries.get(key)
      if (!entry) return undefined
      const t = now()
      if (t - entry.verifiedAt >= ttlMs || (entry.row.expiresAt !== null && entry.row.expiresAt.getTime() <= t)) {
        entries.delete(key)
        return undefined
      }
      return entry.row
    },
    generation: () => generation,
    set(digest, row, startedUnder) {
      if (ttlMs <= 0 || startedUnder !== generation || !options.isLive()) return
      const key = digest
      entries.delete(key)
      if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!)
      entries.set(key, { row, verifiedAt: now() })
    },
    clear() {
      generation++
      entries.clear()
    },
    get size() {
      return entries.size
    },
  }
}
