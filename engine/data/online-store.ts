/**
 * The online store (Feast's OnlineStore): `writeBatch` upserts the newest materialized row per
 * entity, `read` looks entities up by primary key in one round trip. The ttl rule of SPEC section 7
 * applies when values are read: a row whose feature timestamp is before now - ttl has every feature
 * returned as null (a row exactly ttl old is still returned).
 *
 * A view's definition (entity columns, features, ttl) is kept for `definitionCacheMs` after its read
 * began, so that a lookup is one primary-key query: a changed definition reaches reads within that
 * time. Lookups that find it missing or stale share one read, and a definition in use is read again
 * in the background once half that time is up, so that a busy view's lookups never wait for it.
 * With a row cache (online-cache.ts, the web process has one), entities read a moment ago are
 * answered from memory, synchronously when nothing else has to be read.
 */
import type { Db } from '../store/db.ts'
import type { Queryable } from '../store/queryable.ts'
import { readOnlineDefinition, readOnlineRows, writeOnlineRows } from '../store/feature-online.ts'
import type { OnlineDefinition, OnlineRow, OnlineRowWrite } from '../store/feature-online.ts'
import { canonicalEntityKey } from './entity-key.ts'
import type { CachedOnlineRow, OnlineRowCache } from './online-cache.ts'

export interface OnlineValue {
  /** The entity as asked (its key columns), with the stored values' types when found. */
  entity: Record<string, unknown>
  /** Every feature of the view's current definition; null when unknown, missing or older than ttl. */
  features: Record<string, unknown>
  /** When the returned row was materialized (its interval end); null when the entity has no row. */
  feature_timestamp: string | null
  /** Whether the online store holds a row for the entity. */
  found: boolean
  /** The row is older than the view's ttl (its features are returned as null). */
  expired: boolean
}

export type OnlineReadResult =
  | { ok: true; view: string; entityColumns: string[]; values: OnlineValue[] }
  | { ok: false; reason: 'unknown_view'; message: string }
  | { ok: false; reason: 'bad_entity'; message: string }

export interface OnlineStore {
  writeBatch(q: Queryable, view: string, definitionVersion: number, featureTimestamp: Date, rows: readonly OnlineRowWrite[]): Promise<number>
  /**
   * Each entity: its key columns by name (strings from a URL or CLI, or JSON values). Answers
   * synchronously when the definition and every row asked are in memory, else with a promise.
   */
  read(view: string, entities: readonly Record<string, unknown>[]): OnlineReadResult | Promise<OnlineReadResult>
  /**
   * The answer `read` would give for one well-formed entity of a known view, when the view's kept
   * definition and the entity's cached row (or cached absence) answer it from memory; undefined in
   * every other case (a malformed entity included), and nothing is read from the database: the
   * caller then asks `read`. The answer is given as `render(value, by)` made it: for a row within its
   * ttl that is made once and kept with the cached row while `by` (e.g. the secret masker in use) and
   * the view's definition stay the same objects, so a row asked again costs no rendering.
   */
  peek<B extends object, T>(view: string, entity: Record<string, unknown>, by: B, render: (value: OnlineValue, by: B) => T): T | undefined
}

/** The answer made from a cached row within its ttl, and what `peek`'s caller last made of it (with what). */
interface KeptAnswer {
  readonly definition: OnlineDefinition
  readonly value: OnlineValue
  renderedBy: object | undefined
  rendered: unknown
}

export interface OnlineStoreOptions {
  now?: () => Date
  /** How long a view's definition is reused by reads. @default 1000 */
  definitionCacheMs?: number
  /** Rows read recently (see online-cache.ts). @default none */
  rowCache?: OnlineRowCache
}

export function createOnlineStore(db: Db | Queryable, options: OnlineStoreOptions = {}): OnlineStore {
  const now = options.now ?? (() => new Date())
  const cacheMs = options.definitionCacheMs ?? 1000
  const definitions = new Map<string, { definition: OnlineDefinition; readAt: number }>()
  // Reads of a definition under way: concurrent lookups share one (none when definitions are not kept).
  const loading = new Map<string, Promise<OnlineDefinition | undefined>>()
  const load = (view: string): Promise<OnlineDefinition | undefined> => {
    const running = cacheMs > 0 ? loading.get(view) : undefined
    if (running) return running
    const startedAt = performance.now()
    const promise = readOnlineDefinition(db, view)
      .then((definition) => {
        // Kept from when the read began: a definition changed after that reaches reads within cacheMs.
        // An unchanged one keeps its object, so the answers kept for it stay valid (see cachedValueOf).
        // The read's own answer is the kept object too: a lookup that waited for it must not make answers
        // that the next lookup (reading the kept one) would not recognise.
        const before = definitions.get(view)?.definition
        const kept = definition && before && sameDefinition(before, definition) ? before : definition
        if (kept) definitions.set(view, { definition: kept, readAt: startedAt })
        else definitions.delete(view)
        return kept
      })
      .finally(() => {
        if (loading.get(view) === promise) loading.delete(view)
      })
    if (cacheMs > 0) loading.set(view, promise)
    return promise
  }
  /** The kept definition while it is fresh (read again in the background once half its time is up, so a busy view never waits). */
  const keptDefinition = (view: string): OnlineDefinition | undefined => {
    const cached = definitions.get(view)
    if (!cached) return undefined
    const age = performance.now() - cached.readAt
    if (age >= cacheMs) return undefined
    if (age >= cacheMs / 2 && !loading.has(view)) load(view).catch(() => undefined)
    return cached.definition
  }
  const definitionOf = (view: string): OnlineDefinition | Promise<OnlineDefinition | undefined> => keptDefinition(view) ?? load(view)
  const cache = options.rowCache
  const lookUp = async (view: string, keys: readonly (string | undefined)[]): Promise<Map<string, OnlineRow>> => {
    const wanted = [...new Set(keys.filter((k): k is string => k !== undefined))]
    if (!cache) return readOnlineRows(db, view, wanted)
    const rows = new Map<string, OnlineRow>()
    const missing: string[] = []
    for (const key of wanted) {
      const cached = cache.get(view, key)
      if (cached === undefined) missing.push(key)
      else if (cached !== null) rows.set(key, cached)
    }
    if (missing.length === 0) return rows
    const generation = cache.generation(view)
    const read = await readOnlineRows(db, view, missing)
    for (const key of missing) {
      const row = read.get(key)
      cache.set(view, key, row ?? null, generation)
      if (row) rows.set(key, row)
    }
    return rows
  }
  const valueOf = (d: OnlineDefinition, oldest: number | undefined, e: Record<string, unknown>, row: OnlineRow | undefined): OnlineValue => {
    const expired = row !== undefined && oldest !== undefined && row.featureTimestamp.getTime() < oldest
    const features: Record<string, unknown> = {}
    for (const f of d.features) features[f] = row && !expired && Object.hasOwn(row.features, f) ? row.features[f] : null
    const entity: Record<string, unknown> = {}
    for (const c of d.entity) entity[c] = row ? row.entity[c] : e[c]
    return { entity, features, feature_timestamp: row ? row.featureTimestamp.toISOString() : null, found: row !== undefined, expired }
  }
  /**
   * The answer for a cached row. One within its ttl depends only on the row and the definition: it is
   * made once, kept with the cache entry and reused (frozen: serializing and masking copy, nothing
   * writes to it), as is what `peek`'s caller made of it. An expired row, or a cached absence (whose
   * answer echoes the entity as asked), is answered afresh.
   */
  const cachedValueOf = (d: OnlineDefinition, oldest: number | undefined, e: Record<string, unknown>, cached: CachedOnlineRow): { value: OnlineValue; kept?: KeptAnswer } => {
    const row = cached.row
    if (row === null || (oldest !== undefined && row.featureTimestamp.getTime() < oldest)) return { value: valueOf(d, oldest, e, row ?? undefined) }
    const memo = cached.memo as KeptAnswer | undefined
    if (memo !== undefined && memo.definition === d) return { value: memo.value, kept: memo }
    const value = valueOf(d, oldest, e, row)
    Object.freeze(value.entity)
    Object.freeze(value.features)
    const kept: KeptAnswer = { definition: d, value: Object.freeze(value), renderedBy: undefined, rendered: undefined }
    cached.memo = kept
    return { value, kept }
  }
  const answer = (view: string, d: OnlineDefinition | undefined, entities: readonly Record<string, unknown>[]): OnlineReadResult | Promise<OnlineReadResult> => {
    if (!d) return { ok: false, reason: 'unknown_view', message: `feature view ${view} is not defined` }
    const keys: (string | undefined)[] = []
    for (let i = 0; i < entities.length; i++) {
      const e = entities[i]!
      if (!hasExactlyScalars(e, d.entity)) {
        const problem = entityProblem(e, i, view, d.entity)
        if (problem) return { ok: false, reason: 'bad_entity', message: problem }
      }
      keys.push(canonicalEntityKey(d.entity.map((c) => e[c])))
    }
    const oldest = d.ttlMs === null ? undefined : now().getTime() - d.ttlMs
    if (entities.length === 1) {
      // One entity, the common case: from the cache without the batch path's maps and sets.
      const key = keys[0]
      if (key === undefined) return { ok: true, view, entityColumns: d.entity, values: [valueOf(d, oldest, entities[0]!, undefined)] }
      const cached = cache?.entry(view, key)
      if (cached !== undefined) return { ok: true, view, entityColumns: d.entity, values: [cachedValueOf(d, oldest, entities[0]!, cached).value] }
    }
    const done = (rows: Map<string, OnlineRow>): OnlineReadResult => ({
      ok: true,
      view,
      entityColumns: d.entity,
      values: entities.map((e, i) => {
        const key = keys[i]
        const row = key === undefined ? undefined : rows.get(key)
        // A row the cache now holds (the one just read included) is answered with the entry's kept answer.
        const cached = row === undefined ? undefined : cache?.entry(view, key!)
        return cached !== undefined && cached.row === row ? cachedValueOf(d, oldest, e, cached).value : valueOf(d, oldest, e, row)
      }),
    })
    return lookUp(view, keys).then(done)
  }
  return {
    writeBatch: writeOnlineRows,
    read(view, entities) {
      const d = definitionOf(view)
      return d instanceof Promise ? d.then((found) => answer(view, found, entities)) : answer(view, d, entities)
    },
    peek(view, entity, by, render) {
      if (!cache) return undefined
      const d = keptDefinition(view)
      if (!d || !hasExactlyScalars(entity, d.entity)) return undefined
      const key = canonicalEntityKey(d.entity.map((c) => entity[c]))
      if (key === undefined) return undefined
      const cached = cache.entry(view, key)
      if (cached === undefined) return undefined
      const { value, kept } = cachedValueOf(d, d.ttlMs === null ? undefined : now().getTime() - d.ttlMs, entity, cached)
      if (kept === undefined) return render(value, by)
      if (kept.renderedBy !== by) {
        kept.rendered = render(value, by)
        kept.renderedBy = by
      }
      return kept.rendered as ReturnType<typeof render>
    },
  }
}

function sameDefinition(a: OnlineDefinition, b: OnlineDefinition): boolean {
  const sameList = (x: readonly string[], y: readonly string[]) => x.length === y.length && x.every((v, i) => v === y[i])
  return a.version === b.version && a.ttlMs === b.ttlMs && a.removed === b.removed && sameList(a.entity, b.entity) && sameList(a.features, b.features)
}

/** The entity has exactly the given columns as own keys, each a scalar (the check every lookup makes first, without allocating). */
function hasExactlyScalars(e: Record<string, unknown>, columns: readonly string[]): boolean {
  let n = 0
  for (const c in e) {
    if (!Object.hasOwn(e, c)) continue
    n++
    const v = e[c]
    if (v !== null && typeof v === 'object') return false
  }
  if (n !== columns.length) return false
  for (const c of columns) if (!Object.hasOwn(e, c)) return false
  return true
}

/** Why an entity cannot be looked up (a non-scalar value, missing or unknown columns), or undefined. */
function entityProblem(e: Record<string, unknown>, i: number, view: string, columns: readonly string[]): string | undefined {
  const complex = Object.entries(e).find(([, v]) => v !== null && typeof v === 'object')
  if (complex) return `entity ${i + 1}: ${complex[0]} must be a string, number, boolean or null`
  const missing = columns.filter((c) => !Object.hasOwn(e, c))
  const extra = Object.keys(e).filter((c) => !columns.includes(c))
  if (missing.length === 0 && extra.length === 0) return undefined
  const problems = [...(missing.length > 0 ? [`lacks ${missing.join(', ')}`] : []), ...(extra.length > 0 ? [`has unknown ${extra.join(', ')}`] : [])]
  return `entity ${i + 1} ${problems.join(' and ')}; the entity columns of ${view} are ${columns.join(', ')}`
}
