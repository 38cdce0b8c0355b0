/**
 * A read-through cache of online rows in the web process, so that a lookup of an entity read a
 * moment ago needs no database round trip. It holds what Postgres answered for (view, entity key):
 * the row, or that there is none. The ttl rule is still applied by the online store on every read
 * (rows are kept as stored, not as answered).
 *
 * Freshness: every write of online rows sends a NOTIFY in its transaction (store/feature-online.ts,
 * store/cache-notify.ts), and the web process drops the view's rows when it arrives, so a lookup
 * after a materialization committed sees the new values as soon as the notification is in (a few
 * milliseconds). A read that started before the notification arrived is answered but not cached. An
 * entry is also dropped after `maxAgeMs`, and nothing is cached or answered from the cache while the
 * notification feed is down (cache-feed.ts).
 *
 * Memory: at most `maxRows` entries over all views. Eviction is second-chance (CLOCK), the usual
 * cheap approximation of least-recently-used: the oldest entry goes unless it was read since it was
 * last passed over, and a hit only sets a flag (moving entries in the map on every hit made the
 * lookup the route's costliest step).
 */
import type { OnlineRow } from '../store/feature-online.ts'

export interface OnlineRowCache {
  /** The cached answer for the key: the row, null when the database had none, undefined when not cached. */
  get(view: string, key: string): OnlineRow | null | undefined
  /** The same entry with its memo slot (see `CachedOnlineRow`); undefined when `get` would be. */
  entry(view: string, key: string): CachedOnlineRow | undefined
  /** Call before asking the database; pass the result to `set`. */
  generation(view: string): number
  set(view: string, key: string, row: OnlineRow | null, generation: number): void
  /** Forgets the rows of a view, or of every view. */
  invalidate(view?: string): void
  readonly size: number
  readonly maxRows: number
}

export interface OnlineRowCacheOptions {
  /** Entries kept at most; 0 turns the cache off. @default 100000 */
  maxRows?: number
  /** An entry is asked again after this long even without a notification. @default 60000 */
  maxAgeMs?: number
  /** Whether online-row notifications are being received now. */
  isLive: () => boolean
  now?: () => number
}

/** A cached row as its reader sees it. */
export interface CachedOnlineRow {
  readonly row: OnlineRow | null
  /**
   * Whatever its reader keeps with this row (the online store keeps the answer it made from it, so a
   * row read again is not answered again from scratch); dropped with the entry.
   */
  memo: unknown
}

interface Entry extends CachedOnlineRow {
  readonly view: string
  readonly at: number
  used: boolean
}

export const DEFAULT_ONLINE_CACHE_ROWS = 100_000

export function createOnlineRowCache(options: OnlineRowCacheOptions): OnlineRowCache {
  const maxRows = options.maxRows ?? DEFAULT_ONLINE_CACHE_ROWS
  const maxAgeMs = options.maxAgeMs ?? 60_000
  const now = options.now ?? (() => performance.now())
  // Map order is the eviction order (oldest first).
  const entries = new Map<string, Entry>()
  const generations = new Map<string, number>()
  let counter = 0
  let everything = 0
  const keyOf = (view: string, key: string) => `${view}\u0000${key}`
  const evictOne = (): void => {
    for (const [k, entry] of entries) {
      entries.delete(k)
      if (!entry.used) return
      entry.used = false
      entries.set(k, entry)
    }
  }
  const generationOf = (view: string) => Math.max(generations.get(view) ?? 0, everything)
  const entryOf = (view: string, key: string): Entry | undefined => {
    if (entries.size === 0 || !options.isLive()) return undefined
    const k = keyOf(view, key)
    const entry = entries.get(k)
    if (!entry) return undefined
    if (now() - entry.at >= maxAgeMs) {
      entries.delete(k)
      return undefined
    }
    entry.used = true
    return entry
  }
  return {
    get: (view, key) => entryOf(view, key)?.row,
    entry: entryOf,
    generation: generationOf,
    set(view, key, row, startedUnder) {
      if (maxRows <= 0 || startedUnder !== generationOf(view) || !options.isLive()) return
      const k = keyOf(view, key)
      entries.delete(k)
      while (entries.size >= maxRows) evictOne()
      entries.set(k, { view, row, at: now(), used: false, memo: undefined })
    },
    invalidate(view) {
      counter++
      if (view === undefined) {
        everything = counter
        generations.clear()
        entries.clear()
        return
      }
      generations.set(view, counter)
      for (const [k, entry] of entries) if (entry.view === view) entries.delete(k)
    },
    get size() {
      return entries.size
    },
    maxRows,
  }
}
