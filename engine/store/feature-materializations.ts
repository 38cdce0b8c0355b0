/**
 * The offline store's index (migration 0013): one row per materialized (view, definition version,
 * interval end), naming the folder of its Parquet rows. Replacing an interval is one upsert under an
 * advisory lock on that key, so two runs materializing the same interval at once (overlapping
 * backfills) are serialized and the loser's folder is known and removed: one interval end never has
 * two sets of rows.
 */
import type { Queryable } from './queryable.ts'

export interface MaterializationRow {
  view: string
  definitionVersion: number
  intervalStart: Date
  intervalEnd: Date
  location: string
  rows: number
  sourceDataset: string
  sourceVersion: number
  /** Rows written to the online store, or null when the materialization was offline only. */
  onlineRows: number | null
  runId: string | null
  taskId: string | null
  attempt: number | null
  materializedAt: Date
}

interface RawRow {
  view: string
  definition_version: number
  interval_start: Date
  interval_end: Date
  location: string
  row_count: string
  source_dataset: string
  source_version: number
  online_rows: string | null
  run_id: string | null
  task_id: string | null
  attempt: number | null
  materialized_at: Date
}

const COLUMNS = 'view, definition_version, interval_start, interval_end, location, row_count, source_dataset, source_version, online_rows, run_id, task_id, attempt, materialized_at'

const toRow = (r: RawRow): MaterializationRow => ({
  view: r.view,
  definitionVersion: r.definition_version,
  intervalStart: r.interval_start,
  intervalEnd: r.interval_end,
  location: r.location,
  rows: Number(r.row_count),
  sourceDataset: r.source_dataset,
  sourceVersion: r.source_version,
  onlineRows: r.online_rows === null ? null : Number(r.online_rows),
  runId: r.run_id,
  taskId: r.task_id,
  attempt: r.attempt,
  materializedAt: r.materialized_at,
})

export type NewMaterialization = Omit<MaterializationRow, 'materializedAt'>

/**
 * Records a materialization in the caller's transaction, replacing the one of the same interval;
 * returns the location of the replaced rows (to delete after commit), if any.
 */
export async function replaceMaterialization(q: Queryable, m: NewMaterialization): Promise<string | undefined> {
  await q.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 13))`, [`${m.view}/${m.definitionVersion}/${m.intervalEnd.toISOString()}`])
  const before = await q.query<{ location: string }>(
    `SELECT location FROM cairn.feature_materialization WHERE view = $1 AND definition_version = $2 AND interval_end = $3`,
    [m.view, m.definitionVersion, m.intervalEnd],
  )
  await q.query(
    `INSERT INTO cairn.feature_materialization (${COLUMNS})
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())
     ON CONFLICT (view, definition_version, interval_end) DO UPDATE SET
       interval_start = excluded.interval_start, location = excluded.location, row_count = excluded.row_count,
       source_dataset = excluded.source_dataset, source_version = excluded.source_version, online_rows = excluded.online_rows,
       run_id = excluded.run_id, task_id = excluded.task_id, attempt = excluded.attempt, materialized_at = now()`,
    [m.view, m.definitionVersion, m.intervalStart, m.intervalEnd, m.location, m.rows, m.sourceDataset, m.sourceVersion, m.onlineRows, m.runId, m.taskId, m.attempt],
  )
  const old = before.rows[0]?.location
  return old !== undefined && old !== m.location ? old : undefined
}

/** Materialized intervals of a view (one definition version, or all), oldest interval end first. */
export async function listMaterializations(q: Queryable, view: string, definitionVersion?: number): Promise<MaterializationRow[]> {
  const { rows } = definitionVersion === undefined
    ? await q.query<RawRow>(`SELECT ${COLUMNS} FROM cairn.feature_materialization WHERE view = $1 ORDER BY definition_version, interval_end`, [view])
    : await q.query<RawRow>(`SELECT ${COLUMNS} FROM cairn.feature_materialization WHERE view = $1 AND definition_version = $2 ORDER BY interval_end`, [view, definitionVersion])
  return rows.map(toRow)
}
