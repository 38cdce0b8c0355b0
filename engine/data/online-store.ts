/**
 * The online store (Feast's OnlineStore): `writeBatch` upserts the newest materialized row per
 * entity, `read` looks entities up by primary key in one round trip. The ttl rule of SPEC section 7
 * applies when values are read: a row whose feature timestamp is before now - ttl has every feature
 * returned as null (a row exactly ttl old is still returned).
 *
 * A view's definition (entity columns, features, ttl) is kept for `definitionCacheMs` after it was
 * read, so that a lookup is one primary-key query: a changed definition reaches reads within that
 * time. With a row cache (online-cache.ts, the web process has one), entities read a moment ago
 * are answered from memory.
 */
import type { Db } from '../store/db.ts'
import type { Queryable } from '../store/queryable.ts'
import { readOnlineDefinition, readOnlineRows, writeOnlineRows } from '../store/feature-online.ts'
import type { OnlineDefinition, OnlineRow, OnlineRowWrite } from '../store/feature-online.ts'
import { canonicalEntityKey } from './entity-key.ts'
import type { OnlineRowCache } from './online-cache.ts'

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
  /** Each entity: its key columns by name (strings from a URL or CLI, or JSON values). */
  read(view: string, entities: readonly Record<string, unknown>[]): Promise<OnlineReadResult>
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
  const definitionOf = async (view: string): Promise<OnlineDefinition | undefined> => {
    const cached = definitions.get(view)
    if (cached && performance.now() - cached.readAt < cacheMs) return cached.definition
    const definition = await readOnlineDefinition(db, view)
    if (definition) definitions.set(view, { definition, readAt: performance.now() })
    else definitions.delete(view)
    return definition
  }
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
  return {
    writeBatch: writeOnlineRows,
    async read(view, entities) {
      const d = await definitionOf(view)
      if (!d) return { ok: false, reason: 'unknown_view', message: `feature view ${view} is not defined` }
      const keys: (string | undefined)[] = []
      for (const [i, e] of entities.entries()) {
        const complex = Object.entries(e).find(([, v]) => v !== null && typeof v === 'object')
        if (complex) return { ok: false, reason: 'bad_entity', message: `entity ${i + 1}: ${complex[0]} must be a string, number, boolean or null` }
        const missing = d.entity.filter((c) => !Object.hasOwn(e, c))
        const extra = Object.keys(e).filter((c) => !d.entity.includes(c))
        if (missing.length > 0 || extra.length > 0) {
          const problems = [...(missing.length > 0 ? [`lacks ${missing.join(', ')}`] : []), ...(extra.length > 0 ? [`has unknown ${extra.join(', ')}`] : [])]
          return { ok: false, reason: 'bad_entity', message: `entity ${i + 1} ${problems.join(' and ')}; the entity columns of ${view} are ${d.entity.join(', ')}` }
        }
        keys.push(canonicalEntityKey(d.entity.map((c) => e[c])))
      }
      const rows = await lookUp(view, keys)
      const oldest = d.ttlMs === null ? undefined : now().getTime() - d.ttlMs
      const values = entities.map((e, i): OnlineValue => {
        const row = keys[i] === undefined ? undefined : rows.get(keys[i]!)
        const expired = row !== undefined && oldest !== undefined && row.featureTimestamp.getTime() < oldest
        const features: Record<string, unknown> = {}
        for (const f of d.features) features[f] = row && !expired && Object.hasOwn(row.features, f) ? row.features[f] : null
        const entity: Record<string, unknown> = {}
        for (const c of d.entity) entity[c] = row ? row.entity[c] : e[c]
        return { entity, features, feature_timestamp: row ? row.featureTimestamp.toISOString() : null, found: row !== undefined, expired }
      })
      return { ok: true, view, entityColumns: d.entity, values }
    },
  }
}
