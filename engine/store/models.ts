/**
 * Model registry metadata (migration 0014): one row per model, one per version, and an audit row for
 * every stage a version enters. Registering allocates the next number under the model's row lock,
 * so versions are 1, 2, 3 ... in commit order.
 */
import type { Queryable } from './queryable.ts'
import { madeByThisRun, runPrunedColumn } from './run-pruned.ts'

export const MODEL_STAGES = ['candidate', 'canary', 'production', 'archived'] as const
export type ModelStage = (typeof MODEL_STAGES)[number]

export function isModelStage(value: string): value is ModelStage {
  return (MODEL_STAGES as readonly string[]).includes(value)
}

export type ModelActor = { user: string } | { token: string } | { run: string; task: string }

export interface ModelLineage {
  run?: string
  task?: string
  attempt?: number
  dag_version?: number | null
  dataset?: { name: string; version: number }
  feature_views?: { feature_view: string; definition_version: number }[]
}

export interface ModelVersionRow {
  model: string
  version: number
  stage: ModelStage
  /** Relative to the data directory. */
  artifact: string
  sha256: string
  metrics: Record<string, unknown>
  lineage: ModelLineage
  features: string[]
  taskKind: string | null
  trafficShare: number
  runId: string | null
  taskId: string | null
  /** The run that trained it was deleted by retention (`cairn db prune`); the version and its lineage stay. */
  runPruned: boolean
  createdAt: Date
}

export interface ModelSummaryRow {
  name: string
  latestVersion: number
  production: number | null
  canary: number | null
  createdAt: Date
}

export interface ModelAuditRow {
  model: string
  version: number
  fromStage: ModelStage | null
  toStage: ModelStage
  actor: ModelActor
  /** The version's share after the change (null for rows written before shares were audited). */
  trafficShare: number | null
  at: Date
}

/** `run_pruned`: the run that made the version is gone (run-pruned.ts). */
const COLUMNS = `model, version, stage, artifact, sha256, metrics, lineage, features, task_kind, traffic_share, run_id, task_id, created_at,
  ${runPrunedColumn('model_version', 'created_at')}`

interface RawVersion {
  model: string
  version: number
  stage: ModelStage
  artifact: string
  sha256: string
  metrics: Record<string, unknown>
  lineage: ModelLineage
  features: string[]
  task_kind: string | null
  traffic_share: number
  run_id: string | null
  task_id: string | null
  created_at: Date
  run_pruned: boolean
}

function rowOf(r: RawVersion): ModelVersionRow {
  return {
    model: r.model,
    version: r.version,
    stage: r.stage,
    artifact: r.artifact,
    sha256: r.sha256,
    metrics: r.metrics,
    lineage: r.lineage,
    features: r.features,
    taskKind: r.task_kind,
    trafficShare: r.traffic_share,
    runId: r.run_id,
    taskId: r.task_id,
    runPruned: r.run_pruned,
    createdAt: r.created_at,
  }
}

/** Locks the model's row (creating it) and returns the number the next version gets. */
export async function lockNextModelVersion(q: Queryable, model: string): Promise<number> {
  await q.query(`INSERT INTO cairn.model (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, [model])
  const { rows } = await q.query<{ latest_version: number }>(`SELECT latest_version FROM cairn.model WHERE name = $1 FOR UPDATE`, [model])
  return rows[0]!.latest_version + 1
}

/** The version this task instance already registered with this very file (a retry after a lost report). */
export async function findRegisteredBy(q: Queryable, model: string, runId: string, taskId: string, sha256: string): Promise<ModelVersionRow | undefined> {
  // Only a version this very run registered (a pruned run's id given again is another run; see datasets.ts).
  const { rows } = await q.query<RawVersion>(
    `SELECT ${COLUMNS} FROM cairn.model_version WHERE model = $1 AND run_id = $2 AND task_id = $3 AND sha256 = $4
        AND ${madeByThisRun('created_at', '$2')}
      ORDER BY version DESC LIMIT 1`,
    [model, runId, taskId, sha256],
  )
  return rows[0] && rowOf(rows[0])
}

export interface NewModelVersion {
  model: string
  version: number
  artifact: string
  sha256: string
  metrics: Record<string, unknown>
  lineage: ModelLineage
  features: string[]
  taskKind: string | null
  runId?: string
  taskId?: string
  actor: ModelActor
}

/** Inserts a candidate version (after lockNextModelVersion, in the same transaction) and its audit row. */
export async function insertModelVersion(q: Queryable, v: NewModelVersion): Promise<ModelVersionRow> {
  const { rows } = await q.query<RawVersion>(
    `INSERT INTO cairn.model_version (model, version, artifact, sha256, metrics, lineage, features, task_kind, run_id, task_id)
     VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8, $9, $10) RETURNING ${COLUMNS}`,
    [v.model, v.version, v.artifact, v.sha256, JSON.stringify(v.metrics), JSON.stringify(v.lineage), JSON.stringify(v.features), v.taskKind, v.runId ?? null, v.taskId ?? null],
  )
  await q.query(`UPDATE cairn.model SET latest_version = $2 WHERE name = $1`, [v.model, v.version])
  await q.query(`INSERT INTO cairn.model_audit (model, version, from_stage, to_stage, actor) VALUES ($1, $2, NULL, 'candidate', $3::jsonb)`, [v.model, v.version, JSON.stringify(v.actor)])
  return rowOf(rows[0]!)
}

/**
 * Moves a version to `stage` and writes the audit row. The partial unique indexes refuse a second
 * production or canary version of the same model (error 23505); callers demote the old one first.
 */
export async function updateModelStage(q: Queryable, model: string, version: number, stage: ModelStage, actor: ModelActor, trafficShare?: number): Promise<{ from: ModelStage; row: ModelVersionRow } | undefined> {
  const current = await q.query<{ stage: ModelStage }>(`SELECT stage FROM cairn.model_version WHERE model = $1 AND version = $2 FOR UPDATE`, [model, version])
  const from = current.rows[0]?.stage
  if (from === undefined) return undefined
  const { rows } = await q.query<RawVersion>(
    `UPDATE cairn.model_version SET stage = $3, traffic_share = COALESCE($4, traffic_share) WHERE model = $1 AND version = $2 RETURNING ${COLUMNS}`,
    [model, version, stage, trafficShare ?? null],
  )
  const row = rowOf(rows[0]!)
  await q.query(`INSERT INTO cairn.model_audit (model, version, from_stage, to_stage, actor, traffic_share) VALUES ($1, $2, $3, $4, $5::jsonb, $6)`, [model, version, from, stage, JSON.stringify(actor), row.trafficShare])
  return { from, row }
}

export async function readModelVersion(q: Queryable, model: string, version?: number): Promise<ModelVersionRow | undefined> {
  const { rows } = version === undefined
    ? await q.query<RawVersion>(`SELECT ${COLUMNS} FROM cairn.model_version WHERE model = $1 ORDER BY version DESC LIMIT 1`, [model])
    : await q.query<RawVersion>(`SELECT ${COLUMNS} FROM cairn.model_version WHERE model = $1 AND version = $2`, [model, version])
  return rows[0] && rowOf(rows[0])
}

/** The newest version in `stage` (for production and canary: the only one). */
export async function readModelVersionInStage(q: Queryable, model: string, stage: ModelStage): Promise<ModelVersionRow | undefined> {
  const { rows } = await q.query<RawVersion>(`SELECT ${COLUMNS} FROM cairn.model_version WHERE model = $1 AND stage = $2 ORDER BY version DESC LIMIT 1`, [model, stage])
  return rows[0] && rowOf(rows[0])
}

export async function listModelVersions(q: Queryable, model: string): Promise<ModelVersionRow[]> {
  const { rows } = await q.query<RawVersion>(`SELECT ${COLUMNS} FROM cairn.model_version WHERE model = $1 ORDER BY version`, [model])
  return rows.map(rowOf)
}

/** Every version of every model, by model, newest version first. */
export async function listAllModelVersions(q: Queryable): Promise<ModelVersionRow[]> {
  const { rows } = await q.query<RawVersion>(`SELECT ${COLUMNS} FROM cairn.model_version ORDER BY model, version DESC`)
  return rows.map(rowOf)
}

export async function listModels(q: Queryable): Promise<ModelSummaryRow[]> {
  const { rows } = await q.query<{ name: string; latest_version: number; production: number | null; canary: number | null; created_at: Date }>(
    `SELECT m.name, m.latest_version, m.created_at,
            (SELECT version FROM cairn.model_version v WHERE v.model = m.name AND v.stage = 'production') AS production,
            (SELECT version FROM cairn.model_version v WHERE v.model = m.name AND v.stage = 'canary') AS canary
       FROM cairn.model m ORDER BY m.name`,
  )
  return rows.map((r) => ({ name: r.name, latestVersion: r.latest_version, production: r.production, canary: r.canary, createdAt: r.created_at }))
}

export async function listModelAudit(q: Queryable, model: string): Promise<ModelAuditRow[]> {
  const { rows } = await q.query<{ model: string; version: number; from_stage: ModelStage | null; to_stage: ModelStage; actor: ModelActor; traffic_share: number | null; at: Date }>(
    `SELECT model, version, from_stage, to_stage, actor, traffic_share, at FROM cairn.model_audit WHERE model = $1 ORDER BY id`,
    [model],
  )
  return rows.map((r) => ({ model: r.model, version: r.version, fromStage: r.from_stage, toStage: r.to_stage, actor: r.actor, trafficShare: r.traffic_share, at: r.at }))
}

/** The DAG version (cairn.dag_version.version_id) a run executes (lineage). */
export async function readRunDagVersion(q: Queryable, runId: string): Promise<number | null> {
  const { rows } = await q.query<{ version_id: string | null }>(`SELECT version_id FROM cairn.run WHERE run_id = $1`, [runId])
  return rows[0]?.version_id == null ? null : Number(rows[0].version_id)
}
