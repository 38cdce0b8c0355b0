/**
 * Read-only queries over the feature view tables (migration 0013) for the web API and page: views
 * with their online row counts, one view's definitions, materialized intervals and online rows, and
 * the source dataset versions a definition was materialized from (lineage).
 */
import type { Queryable } from './queryable.ts'
import { runPrunedColumn } from './run-pruned.ts'

export interface FeatureViewSummary {
  name: string
  file: string | null
  currentVersion: number
  removed: boolean
  description: string | null
  owner: string | null
  tags: string[]
  updatedAt: Date
  onlineRows: number
  intervals: number
  lastIntervalEnd: Date | null
}

export async function listFeatureViewSummaries(q: Queryable): Promise<FeatureViewSummary[]> {
  const { rows } = await q.query<{
    name: string; file: string | null; current_version: number; removed: boolean; description: string | null; owner: string | null; tags: string[]; updated_at: Date
    online_rows: string; intervals: string; last_interval_end: Date | null
  }>(
    `SELECT v.name, v.file, v.current_version, v.removed, v.description, v.owner, v.tags, v.updated_at,
            (SELECT count(*) FROM cairn.feature_online o WHERE o.view = v.name) AS online_rows,
            (SELECT count(*) FROM cairn.feature_materialization m WHERE m.view = v.name AND m.definition_version = v.current_version) AS intervals,
            (SELECT max(interval_end) FROM cairn.feature_materialization m WHERE m.view = v.name AND m.definition_version = v.current_version) AS last_interval_end
       FROM cairn.feature_view v
      ORDER BY v.name`,
  )
  return rows.map((r) => ({
    name: r.name,
    file: r.file,
    currentVersion: r.current_version,
    removed: r.removed,
    description: r.description,
    owner: r.owner,
    tags: Array.isArray(r.tags) ? r.tags : [],
    updatedAt: r.updated_at,
    onlineRows: Number(r.online_rows),
    intervals: Number(r.intervals),
    lastIntervalEnd: r.last_interval_end,
  }))
}

export interface FeatureDefinitionSummary {
  version: number
  hash: string
  definition: unknown
  source: string
  createdAt: Date
}

export async function listFeatureDefinitionSummaries(q: Queryable, view: string): Promise<FeatureDefinitionSummary[]> {
  const { rows } = await q.query<{ version: number; hash: string; definition: unknown; source: string; created_at: Date }>(
    `SELECT version, hash, definition, source, created_at FROM cairn.feature_view_definition WHERE view = $1 ORDER BY version DESC`,
    [view],
  )
  return rows.map((r) => ({ version: r.version, hash: r.hash, definition: r.definition, source: r.source, createdAt: r.created_at }))
}

export interface MaterializedInterval {
  definitionVersion: number
  intervalStart: Date
  intervalEnd: Date
  rows: number
  onlineRows: number | null
  sourceDataset: string
  sourceVersion: number
  runId: string | null
  taskId: string | null
  /** The run named was deleted by retention (`cairn db prune`); the interval stays materialized. */
  runPruned: boolean
  materializedAt: Date
}

/** The newest `limit` materialized intervals of a view (all definition versions), oldest first. */
export async function listMaterializedIntervals(q: Queryable, view: string, limit: number): Promise<MaterializedInterval[]> {
  const { rows } = await q.query<{
    definition_version: number; interval_start: Date; interval_end: Date; row_count: string; online_rows: string | null
    source_dataset: string; source_version: number; run_id: string | null; task_id: string | null; materialized_at: Date; run_pruned: boolean
  }>(
    `SELECT * FROM (
       SELECT definition_version, interval_start, interval_end, row_count, online_rows, source_dataset, source_version, run_id, task_id, materialized_at,
              ${runPrunedColumn('m', 'materialized_at')}
         FROM cairn.feature_materialization m WHERE view = $1 ORDER BY interval_end DESC, definition_version DESC LIMIT $2
     ) newest ORDER BY interval_end, definition_version`,
    [view, limit],
  )
  return rows.map((r) => ({
    definitionVersion: r.definition_version,
    intervalStart: r.interval_start,
    intervalEnd: r.interval_end,
    rows: Number(r.row_count),
    onlineRows: r.online_rows === null ? null : Number(r.online_rows),
    sourceDataset: r.source_dataset,
    sourceVersion: r.source_version,
    runId: r.run_id,
    taskId: r.task_id,
    runPruned: r.run_pruned,
    materializedAt: r.materialized_at,
  }))
}

export async function countFeatureOnlineRows(q: Queryable, view: string): Promise<number> {
  const { rows } = await q.query<{ n: string }>(`SELECT count(*) AS n FROM cairn.feature_online WHERE view = $1`, [view])
  return Number(rows[0]!.n)
}

/** The source dataset versions a definition was materialized from, newest first (at most `limit`). */
export async function featureSourceVersions(q: Queryable, view: string, definitionVersion: number, limit: number): Promise<{ dataset: string; version: number }[]> {
  const { rows } = await q.query<{ source_dataset: string; source_version: number }>(
    `SELECT source_dataset, source_version FROM cairn.feature_materialization
      WHERE view = $1 AND definition_version = $2
      GROUP BY source_dataset, source_version ORDER BY max(interval_end) DESC LIMIT $3`,
    [view, definitionVersion, limit],
  )
  return rows.map((r) => ({ dataset: r.source_dataset, version: r.source_version }))
}
