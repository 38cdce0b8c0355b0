/** What people do to runs: trigger, cancel, clear. Each is one transaction of the caller's. */
import { resolveRunParams } from '../dag/run-params.ts'
import type { Queryable } from './queryable.ts'
import { getDag, getDagVersion } from './dags.ts'
import { createRun, getRun } from './runs.ts'
import type { RunRow } from './runs.ts'
import { descendantsOf, taskGraphOf } from '../graph/task-graph.ts'
import { appendHistory } from './history.ts'
import type { HistoryEntry } from './history.ts'

export type TriggerResult =
  | { ok: true; run: RunRow }
  | { ok: false; code: 'invalid_params'; message: string; /** one entry per problem */ errors: string[] }
  | { ok: false; code: 'not_found' | 'exists'; message: string }

/**
 * A manual run: params checked against the DAG's definitions; logical date defaults to now (SPEC
 * section 2). The run is created queued and the schedulers are woken to start it, so triggering
 * needs no queue connection (the CLI and the web process only write the database).
 */
export async function triggerRun(q: Queryable, ctx: { now: () => Date }, input: { dagId: string; params: Record<string, unknown>; logicalDate?: Date }): Promise<TriggerResult> {
  const dag = await getDag(q, input.dagId)
  if (!dag || dag.versionId === null || dag.removed) return { ok: false, code: 'not_found', message: `no DAG "${input.dagId}"` }
  const spec = await getDagVersion(q, dag.versionId)
  const params = resolveRunParams(spec.params, input.params)
  if (!params.ok) return { ok: false, code: 'invalid_params', message: params.errors.join('; '), errors: params.errors }
  const logicalDate = input.logicalDate ?? ctx.now()
  const run = await createRun(q, {
    dag: spec,
    versionId: dag.versionId,
    runType: 'manual',
    logicalDate,
    dataIntervalStart: logicalDate,
    dataIntervalEnd: logicalDate,
    params: params.values,
  })
  if (!run) return { ok: false, code: 'exists', message: `DAG "${input.dagId}" already has a run for logical date ${logicalDate.toISOString()}` }
  // A paused DAG's manual runs still run (as in Airflow): pausing stops the schedule only.
  await q.query('SELECT pg_notify($1, $2)', ['cairn_wake', input.dagId])
  return { ok: true, run }
}

/** Cancels a queued or running run: unfinished task instances and their attempts become cancelled; workers see it on their next heartbeat. */
export async function cancelRun(q: Queryable, runId: string, now: Date): Promise<{ ok: boolean; state?: string }> {
  const run = await getRun(q, runId, true)
  if (!run) return { ok: false }
  if (run.state !== 'queued' && run.state !== 'running') return { ok: true, state: run.state }
  const tasks = await q.query<{ task_id: string; state: string; attempt: number }>(
    `UPDATE cairn.task_instance ti SET state = 'cancelled', ended_at = $2, message = 'run cancelled'
     FROM (SELECT task_id, state AS old_state FROM cairn.task_instance WHERE run_id = $1 FOR UPDATE) old
     WHERE ti.run_id = $1 AND ti.task_id = old.task_id AND ti.state IN ('pending', 'queued', 'running', 'up_for_retry')
     RETURNING ti.task_id, old.old_state AS state, ti.attempt`,
    [runId, now],
  )
  await q.query(`UPDATE cairn.attempt SET state = 'cancelled', ended_at = $2, message = 'run cancelled' WHERE run_id = $1 AND state IN ('queued', 'running')`, [runId, now])
  await q.query(`UPDATE cairn.run SET state = 'cancelled', ended_at = $2 WHERE run_id = $1`, [runId, now])
  const history: HistoryEntry[] = tasks.rows.map((t) => ({ runId, taskId: t.task_id, attempt: t.attempt || null, from: t.state, to: 'cancelled', reason: 'run cancelled' }))
  history.push({ runId, taskId: null, attempt: null, from: run.state, to: 'cancelled', reason: 'cancelled by user' })
  await appendHistory(q, history)
  await q.query('SELECT pg_notify($1, $2)', ['cairn_cancel', runId])
  await q.query('SELECT pg_notify($1, $2)', ['cairn_wake', run.dagId])
  return { ok: true, state: 'cancelled' }
}

/**
 * Clears a finished run so it runs again. Without a task: every task instance that did not succeed.
 * With a task: that task and everything downstream of it. Cleared task instances go back to
 * pending, and the run back to queued (it waits for a max_active_runs slot like a new run).
 */
export async function clearRun(q: Queryable, runId: string, taskId?: string): Promise<{ ok: true; cleared: string[] } | { ok: false; message: string }> {
  const run = await getRun(q, runId, true)
  if (!run) return { ok: false, message: `no run "${runId}"` }
  if (run.state === 'queued' || run.state === 'running') return { ok: false, message: `run ${runId} is ${run.state}; cancel it or wait for it to finish before clearing` }
  const spec = await getDagVersion(q, run.versionId)
  let targets: string[]
  if (taskId !== undefined) {
    if (!spec.tasks.some((t) => t.id === taskId)) return { ok: false, message: `run ${runId} has no task "${taskId}"` }
    targets = [taskId, ...descendantsOf(taskGraphOf(spec.tasks), taskId)]
  } else {
    const { rows } = await q.query<{ task_id: string }>(`SELECT task_id FROM cairn.task_instance WHERE run_id = $1 AND state <> 'success'`, [runId])
    targets = rows.map((r) => r.task_id)
    // Every task succeeded: nothing would run, so the run keeps its state, times and history.
    if (targets.length === 0) return { ok: true, cleared: [] }
  }
  const { rows } = await q.query<{ task_id: string; old: string }>(
    `UPDATE cairn.task_instance ti SET state = 'pending', failures = 0, next_retry_at = NULL, queued_at = NULL, started_at = NULL, ended_at = NULL,
       failure_kind = NULL, message = NULL, outputs = NULL
     FROM (SELECT task_id, state FROM cairn.task_instance WHERE run_id = $1 AND task_id = ANY($2::text[]) FOR UPDATE) o
     WHERE ti.run_id = $1 AND ti.task_id = o.task_id RETURNING ti.task_id, o.state AS old`,
    [runId, targets],
  )
  await q.query(`UPDATE cairn.run SET state = 'queued', started_at = NULL, ended_at = NULL WHERE run_id = $1`, [runId])
  await appendHistory(q, [
    ...rows.map((r) => ({ runId, taskId: r.task_id, attempt: null, from: r.old, to: 'pending', reason: 'cleared' })),
    { runId, taskId: null, attempt: null, from: run.state, to: 'queued', reason: taskId ? `cleared ${taskId} and downstream` : 'cleared' },
  ])
  await q.query('SELECT pg_notify($1, $2)', ['cairn_wake', run.dagId])
  return { ok: true, cleared: rows.map((r) => r.task_id) }
}
