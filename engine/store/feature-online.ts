/**
 * The online store's rows (migration 0013): the newest materialized row per (view, entity), a
 * primary-key lookup. A write replaces a row only when it is not older, comparing (definition
 * version, feature timestamp): an older interval materialized later never overwrites a newer one,
 * re-materializing the same interval rewrites it (idempotent), and a new definition takes over.
 */
import type { Queryable } from './queryable.ts'

export interface OnlineRowWrite {
  /** Canonical entity key (engine/data/entity-key.ts). */
  key: string
  /** Entity column values as JSON. */
  entity: Record<string, unknown>
  /** Feature values as JSON. */
  features: Record<string, unknown>
}

/** Rows per statement: large enough to be quick, small enough for one bind message. */
const BATCH = 5000

/** Upserts rows of one materialization; returns how many rows were written (newer or equal rows only). */
export async function writeOnlineRows(q: Queryable, view: string, definitionVersion: number, featureTimestamp: Date, rows: readonly OnlineRowWrite[]): Promise<number> {
  let written = 0
  for (let i = 0; i < rows.length; i += BATCH) {
    const batch = rows.slice(i, i + BATCH)
    const result = await q.query(
      `INSERT INTO cairn.feature_online AS o (view, entity_key, entity, features, feature_timestamp, definition_version)
         SELECT $1, w.key, w.entity, w.features, $2, $3
           FROM unnest($4::text[], $5::jsonb[], $6::jsonb[]) AS w (key, entity, features)
       ON CONFLICT (view, entity_key) DO UPDATE
         SET entity = excluded.entity, features = excluded.features, feature_timestamp = excluded.feature_timestamp,
             definition_version = excluded.definition_version, updated_at = now()
       WHERE (excluded.definition_version, excluded.feature_timestamp) >= (o.definition_version, o.feature_timestamp)`,
      [view, featureTimestamp, definitionVersion, batch.map((r) => r.key), batch.map((r) => JSON.stringify(r.entity)), batch.map((r) => JSON.stringify(r.features))],
    )
    written += result.rowCount ?? 0
  }
  return written
}

export interface OnlineRow {
  key: string
  entity: Record<string, unknown>
  features: Record<string, unknown>
  featureTimestamp: Date
  definitionVersion: number
}

export interface OnlineLookup {
  /** The view's current definition (undefined: no such view). */
  definition: { version: number; entity: string[]; features: string[]; ttlMs: number | null; removed: boolean } | undefined
  rows: Map<string, OnlineRow>
}

/** The view's current definition and the stored rows of the given keys, in one round trip. */
export async function readOnlineRows(q: Queryable, view: string, keys: readonly string[]): Promise<OnlineLookup> {
  const { rows } = await q.query<{
    version: number
    removed: boolean
    definition: { entity: string[]; features: { name: string }[]; ttl_ms: number | null }
    entity_key: string | null
    entity: Record<string, unknown> | null
    features: Record<string, unknown> | null
    feature_timestamp: Date | null
    definition_version: number | null
  }>(
    `SELECT v.current_version AS version, v.removed, d.definition, o.entity_key, o.entity, o.features, o.feature_timestamp, o.definition_version
       FROM cairn.feature_view v
       JOIN cairn.feature_view_definition d ON d.view = v.name AND d.version = v.current_version
       LEFT JOIN cairn.feature_online o ON o.view = v.name AND o.entity_key = ANY($2::text[])
      WHERE v.name = $1`,
    [view, keys],
  )
  const first = rows[0]
  if (!first) return { definition: undefined, rows: new Map() }
  const found = new Map<string, OnlineRow>()
  for (const r of rows) {
    if (r.entity_key === null) continue
    found.set(r.entity_key, { key: r.entity_key, entity: r.entity!, features: r.features!, featureTimestamp: r.feature_timestamp!, definitionVersion: r.definition_version! })
  }
  const d = first.definition
  return { definition: { version: first.version, entity: d.entity, features: d.features.map((f) => f.name), ttlMs: d.ttl_ms, removed: first.removed }, rows: found }
}

/** Entities the online store holds for a view (for listings and the web page). */
export async function countOnlineRows(q: Queryable, view: string): Promise<number> {
  const { rows } = await q.query<{ n: string }>(`SELECT count(*)::text AS n FROM cairn.feature_online WHERE view = $1`, [view])
  return Number(rows[0]!.n)
}
