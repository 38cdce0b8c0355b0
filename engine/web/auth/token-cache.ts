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
 *
 * So that a busy client never waits for the database (`resolve`): requests that miss at the same
 * time share one check, and a token in use is checked again in the background once half the ttl has
 * passed, while its entry (still inside the ttl) keeps answering; a background check that finds the
 * token gone drops it at once. An entry never answers for longer than `ttlMs` after the check that
 * stored it began.
 */
import type { TokenRow } from './tokens.ts'

export interface TokenCache {
  /** The live token of this digest, when verified recently enough; undefined: ask the database. */
  get(digest: string): TokenRow | undefined
  /** Call before asking the database; pass the result to `set`. */
  generation(): number
  set(digest: string, row: TokenRow, generation: number, checkedAt?: number): void
  /**
   * The live token of this digest: the cached row (synchronously) when it is fresh, else what `check`
   * finds (one check per digest at a time, shared by everyone asking meanwhile). A fresh entry past
   * half its ttl is checked again in the background. With the cache off, every call checks.
   */
  resolve(digest: string, check: () => Promise<TokenRow | undefined>): TokenRow | undefined | Promise<TokenRow | undefined>
  /**
   * The cached row when it is fresh (checked again in the background past half its ttl, as `resolve`
   * does), else undefined without starting a check: for a caller that answers only from memory and
   * leaves every other request to the path that awaits `resolve`.
   */
  peek(digest: string, check: () => Promise<TokenRow | undefined>): TokenRow | undefined
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
  /** Checks under way, by digest, with the generation they started under. */
  const checking = new Map<string, { generation: number; promise: Promise<TokenRow | undefined> }>()
  let generation = 0
  /** The fresh entry of a digest (an expired or stale one is dropped). */
  const fresh = (key: string) => {
    if (ttlMs <= 0 || entries.size === 0 || !options.isLive()) return undefined
    const entry = entries.get(key)
    if (!entry) return undefined
    const t = now()
    if (t - entry.verifiedAt >= ttlMs || (entry.row.expiresAt !== null && entry.row.expiresAt.getTime() <= t)) {
      entries.delete(key)
      return undefined
    }
    return entry
  }
  const set = (key: string, row: TokenRow, startedUnder: number, checkedAt = now()) => {
    if (ttlMs <= 0 || startedUnder !== generation || !options.isLive()) return
    entries.delete(key)
    if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!)
    entries.set(key, { row, verifiedAt: checkedAt })
  }
  const check = (key: string, load: () => Promise<TokenRow | undefined>): Promise<TokenRow | undefined> => {
    const running = checking.get(key)
    if (running && running.generation === generation) return running.promise
    const startedUnder = generation
    const checkedAt = now()
    const promise = load().then(
      (row) => {
        if (row) set(key, row, startedUnder, checkedAt)
        else if (startedUnder === generation) entries.delete(key)
        return row
      },
    ).finally(() => {
      if (checking.get(key)?.promise === promise) checking.delete(key)
    })
    checking.set(key, { generation: startedUnder, promise })
    return promise
  }
  /** The fresh entry's row, with a background check started once half the ttl has passed. */
  const reuse = (digest: string, entry: { row: TokenRow; verifiedAt: number }, load: () => Promise<TokenRow | undefined>): TokenRow => {
    if (now() - entry.verifiedAt >= ttlMs / 2 && !checking.has(digest)) check(digest, load).catch(() => undefined)
    return entry.row
  }
  return {
    get: (digest) => fresh(digest)?.row,
    generation: () => generation,
    set,
    resolve(digest, load) {
      if (ttlMs <= 0) return load()
      const entry = fresh(digest)
      return entry ? reuse(digest, entry, load) : check(digest, load)
    },
    peek(digest, load) {
      const entry = fresh(digest)
      return entry ? reuse(digest, entry, load) : undefined
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
