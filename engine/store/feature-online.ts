/**
 * The online store's rows (migration 0013): the newest materialized row per (view, entity), a
 * primary-key lookup. A write replaces a row only when it is not older, comparing (definition
 * version, feature timestamp): an older interval materialized later never overwrites a newer one,
 * re-materializing the same interval rewrites it (idempotent), and a new definition takes over.
 */
import { CACHE_CHANNEL, onlinePayload } from './cache-notify.ts'
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

/**
 * Upserts rows of one materialization; returns how many rows were written (newer or equal rows only).
 * Web processes that cache online rows are notified when the transaction commits (cache-notify.ts).
 */
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
  if (written > 0) await q.query(`SELECT pg_notify($1, $2)`, [CACHE_CHANNEL, onlinePayload(view)])
  return written
}

export interface OnlineRow {
  key: string
  entity: Record<string, unknown>
  features: Record<string, unknown>
  featureTimestamp: Date
  definitionVersion: number
}

/** What an online read needs of a view's current definition. */
export interface OnlineDefinition {
  version: number
  entity: string[]
  features: string[]
  ttlMs: number | null
  removed: boolean
}

/** The view's current definition as online reads use it, or undefined when there is no such view. */
export async function readOnlineDefinition(q: Queryable, view: string): Promise<OnlineDefinition | undefined> {
  const { rows } = await q.query<{ version: number; removed: boolean; definition: { entity: string[]; features: { name: string }[]; ttl_ms: number | null } }>(
    `SELECT v.current_version AS version, v.removed, d.definition FROM cairn.feature_view v
       JOIN cairn.feature_view_definition d ON d.view = v.name AND d.version = v.current_version WHERE v.name = $1`,
    [view],
  )
  const r = rows[0]
  return r && { version: r.version, entity: r.definition.entity, features: r.definition.features.map((f) => f.name), ttlMs: r.definition.ttl_ms, removed: r.removed }
}

/** The stored rows of the given keys (a primary-key lookup). */
export async function readOnlineRows(q: Queryable, view: string, keys: readonly string[]): Promise<Map<string, OnlineRow>> {
  const found = new Map<string, OnlineRow>()
  if (keys.length === 0) return found
  const { rows } = await q.query<{ entity_key: string; entity: Record<string, unknown>; features: Record<string, unknown>; feature_timestamp: Date; definition_version: number }>(
    keys.length === 1
      ? `SELECT entity_key, entity, features, feature_timestamp, definition_version FROM cairn.feature_online WHERE view = $1 AND entity_key = $2`
      : `SELECT entity_key, entity, features, feature_timestamp, definition_version FROM cairn.feature_online WHERE view = $1 AND entity_key = ANY($2::text[])`,
    [view, keys.length === 1 ? keys[0] : keys],
  )
  for (const r of rows) found.set(r.entity_key, { key: r.entity_key, entity: r.entity, features: r.features, featureTimestamp: r.feature_timestamp, definitionVersion: r.definition_version })
  return found
}

/** Entities the online store holds for a view (for listings and the web page). */
export async function countOnlineRows(q: Queryable, view: string): Promise<number> {
  const { rows } = await q.query<{ n: string }>(`SELECT count(*)::text AS n FROM cairn.feature_online WHERE view = $1`, [view])
  return Number(rows[0]!.n)
}

/**
 * The rows of one definition version of a view whose feature timestamp lies in (after, upTo], and not
 * before `notBefore` when given (the view's ttl): the features the online store served in a window.
 */
export async function readOnlineWindow(q: Queryable, view: string, definitionVersion: number, after: Date, upTo: Date, notBefore: Date | null): Promise<OnlineRow[]> {
  const { rows } = await q.query<{ entity_key: string; entity: Record<string, unknown>; features: Record<string, unknown>; feature_timestamp: Date; definition_version: number }>(
    `SELECT entity_key, entity, features, feature_timestamp, definition_version FROM cairn.feature_online
      WHERE view = $1 AND definition_version = $2 AND feature_timestamp > $3 AND feature_timestamp <= $4
        AND ($5::timestamptz IS NULL OR feature_timestamp >= $5)
      ORDER BY entity_key`,
    [view, definitionVersion, after, upTo, notBefore],
  )
  return rows.map((r) => ({ key: r.entity_key, entity: r.entity, features: r.features, featureTimestamp: r.feature_timestamp, definitionVersion: r.definition_version }))
}
