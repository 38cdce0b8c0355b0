/** Runs and their task instances: creation, listing, snapshots for the scheduler. */
import { randomBytes } from 'node:crypto'
import type { DagSpec } from '../dag/dag-model.ts'
import type { RunState, TaskState } from '../state/states.ts'
import type { TaskInstanceSnapshot } from '../state/decide-run.ts'
import type { Queryable } from './queryable.ts'
import { appendHistory } from './history.ts'

/** `dataset`: created by a data-aware schedule (`schedule: { datasets }`). */
export type RunType = 'scheduled' | 'manual' | 'backfill' | 'dataset'

export interface RunRow {
  runId: string
  dagId: string
  versionId: number
  runType: RunType
  state: RunState
  logicalDate: Date
  dataIntervalStart: Date
  dataIntervalEnd: Date
  params: Record<string, unknown>
  queuedAt: Date
  startedAt: Date | null
  endedAt: Date | null
}

interface RawRun {
  run_id: string
  dag_id: string
  version_id: string
  run_type: RunType
  state: RunState
  logical_date: Date
  data_interval_start: Date
  data_interval_end: Date
  params: Record<string, unknown>
  queued_at: Date
  started_at: Date | null
  ended_at: Date | null
}

const RUN_COLUMNS = 'run_id, dag_id, version_id, run_type, state, logical_date, data_interval_start, data_interval_end, params, queued_at, started_at, ended_at'

const toRun = (r: RawRun): RunRow => ({
  runId: r.run_id,
  dagId: r.dag_id,
  versionId: Number(r.version_id),
  runType: r.run_type,
  state: r.state,
  logicalDate: r.logical_date,
  dataIntervalStart: r.data_interval_start,
  dataIntervalEnd: r.data_interval_end,
  params: r.params,
  queuedAt: r.queued_at,
  startedAt: r.started_at,
  endedAt: r.ended_at,
})

/**
 * The shape of every run id makeRunId makes (a DAG id as the DAG schema allows, the run type, the logical date
 * to the minute or second, a 6-hex-digit suffix): what the attempt-folder sweep may take for a run's folder.
 */
export const MADE_RUN_ID = /^[a-z][a-z0-9_-]{0,63}__(?:scheduled|manual|backfill|dataset)__\d{8}T\d{4}(?:\d{2})?Z(?:_[0-9a-f]{6})?$/

/** Readable and unique: `hello__scheduled__20260101T0200Z`, manual runs get a random suffix. */
function makeRunId(dagId: string, runType: RunType, logicalDate: Date): string {
  const stamp = logicalDate.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').replace(/00Z$/, 'Z')
  return runType === 'scheduled' ? `${dagId}__${runType}__${stamp}` : `${dagId}__${runType}__${stamp}_${randomBytes(3).toString('hex')}`
}

export interface NewRun {
  dag: DagSpec
  versionId: number
  runType: RunType
  logicalDate: Date
  dataIntervalStart: Date
  dataIntervalEnd: Date
  params: Record<string, unknown>
  runId?: string
  /**
   * The run owns its logical date: no other run of the DAG that owns one may have the same. False
   * for a manual run whose logical date is merely its trigger time. @default true
   */
  ownsLogicalDate?: boolean
}

/**
 * Creates a queued run and its pending task instances. Returns undefined when the DAG already has a
 * run that owns that logical date (the unique key makes concurrent schedulers agree on one run).
 */
export async function createRun(q: Queryable, input: NewRun): Promise<RunRow | undefined> {
  let runId = input.runId ?? makeRunId(input.dag.id, input.runType, input.logicalDate)
  let row: RawRun | undefined
  for (let tries = 1; ; tries++) {
    const { rows } = await q.query<RawRun>(
      `INSERT INTO cairn.run (run_id, dag_id, version_id, run_type, state, logical_date, data_interval_start, data_interval_end, params, owns_logical_date)
       VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9)
       ON CONFLICT DO NOTHING RETURNING ${RUN_COLUMNS}`,
      [runId, input.dag.id, input.versionId, input.runType, input.logicalDate, input.dataIntervalStart, input.dataIntervalEnd, JSON.stringify(input.params), input.ownsLogicalDate ?? true],
    )
    row = rows[0]
    if (row) break
    // A generated id with a random part that another run already has: draw again. A scheduled run's
    // id is its logical date, so a conflict there is the run itself.
    if (input.runId !== undefined || input.runType === 'scheduled' || tries >= 5) return undefined
    const taken = await q.query('SELECT 1 FROM cairn.run WHERE run_id = $1', [runId])
    if (taken.rows.length === 0) return undefined
    runId = makeRunId(input.dag.id, input.runType, input.logicalDate)
  }
  const tasks = input.dag.tasks
  await q.query(
    `INSERT INTO cairn.task_instance (run_id, task_id, state, priority, pool, queue)
     SELECT $1, t.task_id, 'pending', t.priority, t.pool, t.queue FROM unnest($2::text[], $3::int[], $4::text[], $5::text[]) AS t(task_id, priority, pool, queue)`,
    [runId, tasks.map((t) => t.id), tasks.map((t) => t.priority), tasks.map((t) => t.pool), tasks.map((t) => t.queue)],
  )
  await appendHistory(q, [{ runId, taskId: null, attempt: null, from: null, to: 'queued', reason: `${input.runType} run created` }])
  return toRun(row)
}

/** Whether the DAG has any run (owning its date or not) at this logical date. */
export async function hasRunAt(q: Queryable, dagId: string, logicalDate: Date): Promise<boolean> {
  const { rows } = await q.query('SELECT 1 FROM cairn.run WHERE dag_id = $1 AND logical_date = $2 LIMIT 1', [dagId, logicalDate])
  return rows.length > 0
}

export async function getRun(q: Queryable, runId: string, lock = false): Promise<RunRow | undefined> {
  const { rows } = await q.query<RawRun>(`SELECT ${RUN_COLUMNS} FROM cairn.run WHERE run_id = $1${lock ? ' FOR UPDATE' : ''}`, [runId])
  return rows[0] ? toRun(rows[0]) : undefined
}

/**
 * Runs of a DAG, newest first. `olderThan` (a run id) pages on from that run: the key comes from its
 * row, because queued_at has microseconds that a JS Date would round away.
 */
export async function listRuns(q: Queryable, dagId: string, options: { limit: number; state?: RunState; before?: { queuedAt: Date; runId: string }; olderThan?: string }): Promise<RunRow[]> {
  const params: unknown[] = [dagId, options.limit]
  let where = 'dag_id = $1'
  if (options.state) {
    params.push(options.state)
    where += ` AND state = $${params.length}`
  }
  if (options.before) {
    params.push(options.before.queuedAt, options.before.runId)
    where += ` AND (queued_at, run_id) < ($${params.length - 1}, $${params.length})`
  }
  if (options.olderThan !== undefined) {
    params.push(options.olderThan)
    where += ` AND (queued_at, run_id) < (SELECT queued_at, run_id FROM cairn.run WHERE run_id = $${params.length})`
  }
  const { rows } = await q.query<RawRun>(`SELECT ${RUN_COLUMNS} FROM cairn.run WHERE ${where} ORDER BY queued_at DESC, run_id DESC LIMIT $2`, params)
  return rows.map(toRun)
}

export interface TaskInstanceRow extends TaskInstanceSnapshot {
  taskId: string
  failures: number
  pool: string
  priority: number
  queuedAt: Date | null
  startedAt: Date | null
  endedAt: Date | null
  outputs: Record<string, unknown> | null
  failureKind: string | null
  message: string | null
}

export async function listTaskInstances(q: Queryable, runId: string): Promise<TaskInstanceRow[]> {
  const { rows } = await q.query<{
    task_id: string
    state: TaskState
    attempt: number
    failures: number
    pool: string
    priority: number
    next_retry_at: Date | null
    queued_at: Date | null
    started_at: Date | null
    ended_at: Date | null
    outputs: Record<string, unknown> | null
    failure_kind: string | null
    message: string | null
  }>(
    `SELECT task_id, state, attempt, failures, pool, priority, next_retry_at, queued_at, started_at, ended_at, outputs, failure_kind, message
     FROM cairn.task_instance WHERE run_id = $1`,
    [runId],
  )
  return rows.map((r) => ({
    taskId: r.task_id,
    state: r.state,
    attempt: r.attempt,
    failures: r.failures,
    pool: r.pool,
    priority: r.priority,
    nextRetryAt: r.next_retry_at,
    queuedAt: r.queued_at,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    outputs: r.outputs,
    failureKind: r.failure_kind,
    message: r.message,
  }))
}
