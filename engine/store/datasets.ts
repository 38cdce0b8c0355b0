/**
 * Dataset metadata (migration 0012): one row per dataset, one per published version. Publishing
 * allocates the next number under the dataset's row lock, so versions are 1, 2, 3 ... in commit order.
 */
import type { Queryable } from './queryable.ts'
import type { DatasetColumn } from '../data/column-types.ts'
import { madeByThisRun, runPrunedColumn } from './run-pruned.ts'

export interface DatasetVersionRow {
  dataset: string
  version: number
  location: string
  columns: DatasetColumn[]
  rows: number
  bytes: number
  fingerprint: string
  producedKind: string
  runId: string | null
  taskId: string | null
  /** The run that made it was deleted by retention (`cairn db prune`); the version and its lineage stay. */
  runPruned: boolean
  attempt: number | null
  actor: string | null
  inputs: DatasetInput[]
  expectations: unknown
  badRows: { count: number; location: string | null; sample?: unknown[] } | null
  details: Record<string, unknown>
  createdAt: Date
}

/** An input of a version (lineage): a dataset version, a feature view's definition version, or a model version (predict.batch). */
export type DatasetInput = { dataset: string; version: number } | { feature_view: string; definition_version: number } | { model: string; model_version: number }

export interface DatasetSummaryRow {
  name: string
  latestVersion: number
  rows: number | null
  createdAt: Date
  updatedAt: Date | null
}

/** `run_pruned`: the run that made the version is gone (run-pruned.ts). */
const COLUMNS = `dataset, version, location, columns, row_count, bytes, fingerprint, produced_kind, run_id, task_id, attempt, actor,
  inputs, expectations, bad_rows, details, created_at,
  ${runPrunedColumn('dataset_version', 'created_at')}`

interface RawVersion {
  dataset: string
  version: number
  location: string
  columns: DatasetColumn[]
  row_count: string
  bytes: string
  fingerprint: string
  produced_kind: string
  run_id: string | null
  task_id: string | null
  attempt: number | null
  actor: string | null
  inputs: DatasetInput[]
  expectations: unknown
  bad_rows: DatasetVersionRow['badRows']
  details: Record<string, unknown>
  created_at: Date
  run_pruned: boolean
}

function toRow(r: RawVersion): DatasetVersionRow {
  return {
    dataset: r.dataset,
    version: r.version,
    location: r.location,
    columns: r.columns,
    rows: Number(r.row_count),
    bytes: Number(r.bytes),
    fingerprint: r.fingerprint,
    producedKind: r.produced_kind,
    runId: r.run_id,
    taskId: r.task_id,
    runPruned: r.run_pruned,
    attempt: r.attempt,
    actor: r.actor,
    inputs: r.inputs,
    expectations: r.expectations,
    badRows: r.bad_rows,
    details: r.details,
    createdAt: r.created_at,
  }
}

export async function readDatasetVersion(q: Queryable, dataset: string, version?: number): Promise<DatasetVersionRow | undefined> {
  const { rows } = version === undefined
    ? await q.query<RawVersion>(`SELECT ${COLUMNS} FROM cairn.dataset_version WHERE dataset = $1 ORDER BY version DESC LIMIT 1`, [dataset])
    : await q.query<RawVersion>(`SELECT ${COLUMNS} FROM cairn.dataset_version WHERE dataset = $1 AND version = $2`, [dataset, version])
  return rows[0] && toRow(rows[0])
}

/** Versions of one dataset, newest first. */
export async function listDatasetVersions(q: Queryable, dataset: string, limit = 1000): Promise<DatasetVersionRow[]> {
  const { rows } = await q.query<RawVersion>(`SELECT ${COLUMNS} FROM cairn.dataset_version WHERE dataset = $1 ORDER BY version DESC LIMIT $2`, [dataset, limit])
  return rows.map(toRow)
}

export async function listDatasets(q: Queryable): Promise<DatasetSummaryRow[]> {
  const { rows } = await q.query<{ name: string; latest_version: number; row_count: string | null; created_at: Date; updated_at: Date | null }>(
    `SELECT d.name, d.latest_version, v.row_count, d.created_at, v.created_at AS updated_at
       FROM cairn.dataset d
       LEFT JOIN cairn.dataset_version v ON v.dataset = d.name AND v.version = d.latest_version
      WHERE d.latest_version > 0
      ORDER BY d.name`,
  )
  return rows.map((r) => ({ name: r.name, latestVersion: r.latest_version, rows: r.row_count === null ? null : Number(r.row_count), createdAt: r.created_at, updatedAt: r.updated_at }))
}

export interface NewVersion {
  dataset: string
  location: string
  columns: DatasetColumn[]
  rows: number
  bytes: number
  fingerprint: string
  producedKind: string
  runId?: string
  taskId?: string
  attempt?: number
  actor?: string
  inputs: DatasetInput[]
  expectations?: unknown
  badRows?: DatasetVersionRow['badRows']
  details?: Record<string, unknown>
}

export type InsertOutcome =
  | { kind: 'published'; row: DatasetVersionRow }
  /** The same task instance already published these very rows and was not cleared since (a retry after a lost report). */
  | { kind: 'reused'; row: DatasetVersionRow }
  /** The version the rows were computed from is no longer the latest. */
  | { kind: 'stale_base'; latest: number }

/**
 * Inserts the next version of `v.dataset`, inside the caller's transaction. `base` (when given) is
 * the version the rows were computed from: append and interval loads must not silently drop a
 * version another task published meanwhile.
 */
export async function insertDatasetVersion(q: Queryable, v: NewVersion, base?: number): Promise<InsertOutcome> {
  await q.query(`INSERT INTO cairn.dataset (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, [v.dataset])
  const locked = await q.query<{ latest_version: number }>(`SELECT latest_version FROM cairn.dataset WHERE name = $1 FOR UPDATE`, [v.dataset])
  const latest = locked.rows[0]!.latest_version
  if (v.runId !== undefined && v.taskId !== undefined) {
    const same = await q.query<RawVersion>(
      // Not a version from before the task was cleared (it runs again: its new rows make a new version), and
      // only a version this very run made: a run pruned and later given the same id (a scheduled run's id is
      // its DAG and logical date) is another run, which publishes its own version.
      `SELECT ${COLUMNS} FROM cairn.dataset_version WHERE dataset = $1 AND run_id = $2 AND task_id = $3 AND fingerprint = $4 AND columns = $5::jsonb
          AND NOT EXISTS (SELECT 1 FROM cairn.state_history h WHERE h.run_id = $2 AND h.task_id = $3 AND h.to_state = 'pending' AND h.from_state IS NOT NULL AND h.at > dataset_version.created_at)
          AND ${madeByThisRun('created_at', '$2')}
        ORDER BY version DESC LIMIT 1`,
      [v.dataset, v.runId, v.taskId, v.fingerprint, JSON.stringify(v.columns)],
    )
    if (same.rows[0]) return { kind: 'reused', row: toRow(same.rows[0]) }
  }
  if (base !== undefined && base !== latest) return { kind: 'stale_base', latest }
  const version = latest + 1
  await q.query(`UPDATE cairn.dataset SET latest_version = $2 WHERE name = $1`, [v.dataset, version])
  const { rows } = await q.query<RawVersion>(
    `INSERT INTO cairn.dataset_version (dataset, version, location, columns, row_count, bytes, fingerprint, produced_kind, run_id, task_id, attempt, actor, inputs, expectations, bad_rows, details)
     VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14::jsonb, $15::jsonb, $16::jsonb)
     RETURNING ${COLUMNS}`,
    [
      v.dataset, version, v.location, JSON.stringify(v.columns), v.rows, v.bytes, v.fingerprint, v.producedKind,
      v.runId ?? null, v.taskId ?? null, v.attempt ?? null, v.actor ?? null, JSON.stringify(v.inputs),
      v.expectations === undefined ? null : JSON.stringify(v.expectations), v.badRows ? JSON.stringify(v.badRows) : null, JSON.stringify(v.details ?? {}),
    ],
  )
  return { kind: 'published', row: toRow(rows[0]!) }
}

/** Whether the attempt still holds its claim (a lost or cancelled attempt must not publish). */
export async function attemptHoldsClaim(q: Queryable, claimId: string): Promise<boolean> {
  const { rows } = await q.query(`SELECT 1 FROM cairn.attempt WHERE claim_id = $1 AND state = 'running' FOR SHARE`, [claimId])
  return rows.length > 0
}
