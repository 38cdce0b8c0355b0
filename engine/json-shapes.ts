/**
 * The `--format json` shapes of SPEC section 5. Fields may be added, never renamed: scripts parse
 * these. Timestamps are ISO-8601 UTC with milliseconds, null until known.
 */
import type { RunState, TaskState } from './state/states.ts'

export function isoOrNull(date: Date | null | undefined): string | null {
  return date ? date.toISOString() : null
}

/** `cairn trigger --format json` */
export interface TriggerJson {
  run_id: string
  state: RunState
}

export function triggerJson(run: { runId: string; state: RunState }): TriggerJson {
  return { run_id: run.runId, state: run.state }
}

/** One element of `cairn runs --format json` */
export interface RunJson {
  run_id: string
  dag_id: string
  state: RunState
  logical_date: string
  queued_at: string
  started_at: string | null
  ended_at: string | null
}

export function runJson(run: { runId: string; dagId: string; state: RunState; logicalDate: Date; queuedAt: Date; startedAt: Date | null; endedAt: Date | null }): RunJson {
  return {
    run_id: run.runId,
    dag_id: run.dagId,
    state: run.state,
    logical_date: run.logicalDate.toISOString(),
    queued_at: run.queuedAt.toISOString(),
    started_at: isoOrNull(run.startedAt),
    ended_at: isoOrNull(run.endedAt),
  }
}

/**
 * One element of `cairn tasks --format json`; `attempts` is the number of the latest attempt (0: never
 * tried); `outputs` the outputs the latest attempt published (the worker masked secrets before storing
 * them), `{}` when there are none.
 */
export interface TaskJson {
  task_id: string
  state: TaskState
  attempts: number
  started_at: string | null
  ended_at: string | null
  outputs: Record<string, unknown>
}

export function taskJson(ti: { taskId: string; state: TaskState; attempt: number; startedAt: Date | null; endedAt: Date | null; outputs: Record<string, unknown> | null }): TaskJson {
  return { task_id: ti.taskId, state: ti.state, attempts: ti.attempt, started_at: isoOrNull(ti.startedAt), ended_at: isoOrNull(ti.endedAt), outputs: ti.outputs ?? {} }
}

/** One element of `cairn dags --format json` (not in SPEC; same rules). */
export interface DagJson {
  dag_id: string
  paused: boolean
  schedule: string | null
  file: string | null
  import_errors: number
}

export function dagJson(dag: { dagId: string; paused: boolean; file: string | null }, schedule: string | undefined, importErrors: number): DagJson {
  return { dag_id: dag.dagId, paused: dag.paused, schedule: schedule ?? null, file: dag.file, import_errors: importErrors }
}

/** One line of `cairn logs --format json` (one object per line, so `--follow` can stream it). */
export interface LogLineJson {
  attempt: number
  stream: string
  line: string
  at: string
}

export function logLineJson(attempt: number, line: { stream: string; line: string; at: Date }): LogLineJson {
  return { attempt, stream: line.stream, line: line.line, at: line.at.toISOString() }
}

/** One element of `cairn datasets list --format json` (SPEC section 7); `version` is the latest. */
export interface DatasetJson {
  name: string
  version: number
  rows: number | null
  created_at: string
  updated_at: string | null
}

export function datasetJson(d: { name: string; latestVersion: number; rows: number | null; createdAt: Date; updatedAt: Date | null }): DatasetJson {
  return { name: d.name, version: d.latestVersion, rows: d.rows, created_at: d.createdAt.toISOString(), updated_at: isoOrNull(d.updatedAt) }
}

/**
 * `cairn datasets show --format json` (SPEC section 7: name, version, rows, columns, created_at,
 * produced_by), with what else a version records: its size, what made it (an operator type or
 * `import`, and the person for an import), its inputs (lineage), its expectation report and the rows
 * quarantine kept aside (`{count, location}`, location relative to the version's folder).
 */
export interface DatasetVersionJson {
  name: string
  version: number
  rows: number
  columns: { name: string; type: string }[]
  created_at: string
  /** run_pruned: that run was deleted by `cairn db prune` (the version, its files and lineage stay). */
  produced_by: { run_id: string; task_id: string; run_pruned: boolean } | null
  bytes: number
  produced_kind: string
  actor: string | null
  inputs: unknown[]
  expectations: unknown
  bad_rows: { count: number; location: string | null } | null
}

export function datasetVersionJson(v: {
  dataset: string
  version: number
  rows: number
  columns: readonly { name: string; type: string }[]
  createdAt: Date
  runId: string | null
  taskId: string | null
  runPruned: boolean
  bytes: number
  producedKind: string
  actor: string | null
  inputs: readonly unknown[]
  expectations: unknown
  badRows: { count: number; location: string | null } | null
}): DatasetVersionJson {
  return {
    name: v.dataset,
    version: v.version,
    rows: v.rows,
    columns: v.columns.map((c) => ({ name: c.name, type: c.type })),
    created_at: v.createdAt.toISOString(),
    produced_by: v.runId !== null && v.taskId !== null ? { run_id: v.runId, task_id: v.taskId, run_pruned: v.runPruned } : null,
    bytes: v.bytes,
    produced_kind: v.producedKind,
    actor: v.actor,
    inputs: [...v.inputs],
    expectations: v.expectations ?? null,
    bad_rows: v.badRows ? { count: v.badRows.count, location: v.badRows.location ?? null } : null,
  }
}
