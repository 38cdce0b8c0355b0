/** Rows to the API's JSON shapes (see schemas.ts). */
import type { TaskSpec } from '../spec/dag-model.ts'
import type { LogLine } from '../store/logs.ts'
import type { RunRow, TaskInstanceRow } from '../store/runs.ts'

export function iso(date: Date | null | undefined): string | null {
  return date ? date.toISOString() : null
}

export function runJson(run: RunRow) {
  return {
    run_id: run.runId,
    dag_id: run.dagId,
    state: run.state,
    run_type: run.runType,
    logical_date: run.logicalDate.toISOString(),
    data_interval_start: run.dataIntervalStart.toISOString(),
    data_interval_end: run.dataIntervalEnd.toISOString(),
    queued_at: run.queuedAt.toISOString(),
    started_at: iso(run.startedAt),
    ended_at: iso(run.endedAt),
    params: run.params,
  }
}

export function taskInstanceJson(ti: TaskInstanceRow, task: TaskSpec | undefined) {
  return {
    task_id: ti.taskId,
    state: ti.state,
    attempts: ti.attempt,
    failures: ti.failures,
    operator: task?.operator ?? null,
    depends_on: task?.dependsOn ?? [],
    pool: ti.pool,
    queued_at: iso(ti.queuedAt),
    started_at: iso(ti.startedAt),
    ended_at: iso(ti.endedAt),
    next_retry_at: iso(ti.nextRetryAt),
    failure_kind: ti.failureKind,
    message: ti.message,
    outputs: ti.outputs,
  }
}

export function logLineJson(attempt: number, line: LogLine) {
  return { id: line.id, attempt, stream: line.stream, line: line.line, at: line.at.toISOString() }
}
