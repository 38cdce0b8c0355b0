/** What people do to runs: trigger, cancel, clear. Each is one transaction of the caller's. */
import { resolveRunParams } from '../dag/run-params.ts'
import type { Queryable } from './queryable.ts'
import { getDag, getDagVersion } from './dags.ts'
import { createRun, getRun, hasRunAt } from './runs.ts'
import type { RunRow } from './runs.ts'
import { descendantsOf, taskGraphOf } from '../graph/task-graph.ts'
import type { RunState, TaskState } from '../state/states.ts'
import { isTerminalRunState, isTerminalTaskState, taskStatesLeadingTo } from '../state/states.ts'
import { getTaskInstanceStatus } from './run-queries.ts'
import { TransitionRefused, transitionRuns, transitionTasks } from './transitions.ts'

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
  const exists = { ok: false, code: 'exists', message: `DAG "${input.dagId}" already has a run for logical date ${logicalDate.toISOString()}` } as const
  // A date the user chose is refused when any run has it; the trigger time needs no check (many
  // triggers in one millisecond each get their run, see migration 0006).
  if (input.logicalDate !== undefined && (await hasRunAt(q, input.dagId, logicalDate))) return exists
  const run = await createRun(q, {
    ownsLogicalDate: input.logicalDate !== undefined,
    dag: spec,
    versionId: dag.versionId,
    runType: 'manual',
    logicalDate,
    dataIntervalStart: logicalDate,
    dataIntervalEnd: logicalDate,
    params: params.values,
  })
  if (!run) return exists
  // A paused DAG's manual runs still run (as in Airflow): pausing stops the schedule only.
  await q.query('SELECT pg_notify($1, $2)', ['cairn_wake', input.dagId])
  return { ok: true, run }
}

/** Cancels a queued or running run: unfinished task instances and their attempts become cancelled; workers see it on their next heartbeat. */
export async function cancelRun(q: Queryable, runId: string, now: Date, actor: string | null = null): Promise<{ ok: boolean; state?: string }> {
  const run = await getRun(q, runId, true)
  if (!run) return { ok: false }
  if (run.state !== 'queued' && run.state !== 'running') return { ok: true, state: run.state }
  // Attempts before task instances: the order in which workers lock them too.
  await q.query(`UPDATE cairn.attempt SET state = 'cancelled', ended_at = $2, message = 'run cancelled' WHERE run_id = $1 AND state IN ('queued', 'running')`, [runId, now])
  // Every task instance is offered; the table lets only the unfinished ones be cancelled.
  const { rows } = await q.query<{ task_id: string }>('SELECT task_id FROM cairn.task_instance WHERE run_id = $1', [runId])
  await transitionTasks(q, { to: 'cancelled', actor, changes: rows.map((r) => ({ runId, taskId: r.task_id, reason: 'run cancelled', set: { endedAt: now, message: 'run cancelled' } })) })
  const cancelled = await transitionRuns(q, { to: 'cancelled', runIds: [runId], reason: 'cancelled by user', actor, set: { endedAt: now } })
  if (cancelled.length === 0) throw new TransitionRefused(`run ${runId} could not be cancelled from ${run.state}`)
  await q.query('SELECT pg_notify($1, $2)', ['cairn_cancel', runId])
  await q.query('SELECT pg_notify($1, $2)', ['cairn_wake', run.dagId])
  return { ok: true, state: 'cancelled' }
}

/**
 * Clears a finished run so it runs again. Without a task: every task instance that did not succeed.
 * With a task: that task and everything downstream of it. Cleared task instances go back to
 * pending, and the run back to queued (it waits for a max_active_runs slot like a new run).
 */
export async function clearRun(q: Queryable, runId: string, taskId?: string, actor: string | null = null): Promise<{ ok: true; cleared: string[] } | { ok: false; message: string }> {
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
  const cleared = await clearTasks(q, runId, targets, 'cleared', actor)
  const requeued = await transitionRuns(q, {
    to: 'queued',
    byUser: true,
    actor,
    runIds: [runId],
    reason: taskId ? `cleared ${taskId} and downstream` : 'cleared',
    set: { startedAt: null, endedAt: null },
  })
  if (requeued.length === 0) throw new TransitionRefused(`run ${runId} could not be queued again from ${run.state}`)
  await q.query('SELECT pg_notify($1, $2)', ['cairn_wake', run.dagId])
  return { ok: true, cleared }
}

/** Finished task instances back to pending, as if they had never run (their attempts stay on record). */
async function clearTasks(q: Queryable, runId: string, taskIds: readonly string[], reason: string, actor: string | null): Promise<string[]> {
  const changed = await transitionTasks(q, {
    to: 'pending',
    byUser: true,
    actor,
    changes: taskIds.map((taskId) => ({
      runId,
      taskId,
      reason,
      set: { failures: 0, nextRetryAt: null, queuedAt: null, startedAt: null, endedAt: null, failureKind: null, message: null, outputs: null },
    })),
  })
  return changed.map((t) => t.taskId)
}

export type MarkResult =
  | { ok: true; previous: TaskState; cleared: string[]; runState: RunState }
  | { ok: false; code: 'not_found' | 'not_allowed'; message: string }

/**
 * Mark success / mark failed (Airflow's): sets the outcome of a finished task instance by hand.
 * As in Airflow, the downstream task instances that failed or never ran because of it
 * (failed, upstream_failed) are cleared, and a finished run is queued again, so the scheduler
 * re-evaluates the downstream tasks and settles the run's state from its task instances. In a
 * running run the next finish of any of its tasks (or the scheduler's sweep) re-evaluates it.
 */
export async function markTask(q: Queryable, input: { runId: string; taskId: string; to: 'success' | 'failed'; actor: string; now: Date }): Promise<MarkResult> {
  const { runId, taskId, to, actor, now } = input
  const run = await getRun(q, runId, true)
  if (!run) return { ok: false, code: 'not_found', message: `no run "${runId}"` }
  const current = await getTaskInstanceStatus(q, runId, taskId)
  if (!current) return { ok: false, code: 'not_found', message: `run ${runId} has no task "${taskId}"` }
  const from = taskStatesLeadingTo(to, { byUser: true }).filter(isTerminalTaskState)
  const marked = await transitionTasks(q, {
    to,
    from,
    byUser: true,
    actor,
    changes: [{ runId, taskId, reason: `marked ${to}`, set: { endedAt: now, message: `marked ${to} by ${actor}` } }],
  })
  if (marked.length === 0) {
    return { ok: false, code: 'not_allowed', message: `task ${taskId} of run ${runId} is ${current.state}; only a finished task instance in ${from.join(', ')} can be marked ${to}` }
  }
  const spec = await getDagVersion(q, run.versionId)
  const downstream = [...descendantsOf(taskGraphOf(spec.tasks), taskId)]
  const { rows } = await q.query<{ task_id: string }>(`SELECT task_id FROM cairn.task_instance WHERE run_id = $1 AND task_id = ANY($2::text[]) AND state IN ('failed', 'upstream_failed')`, [runId, downstream])
  const cleared = await clearTasks(q, runId, rows.map((r) => r.task_id), `cleared: upstream ${taskId} marked ${to}`, actor)
  let runState = run.state
  if (isTerminalRunState(run.state)) {
    const requeued = await transitionRuns(q, { to: 'queued', byUser: true, actor, runIds: [runId], reason: `${taskId} marked ${to}`, set: { startedAt: null, endedAt: null } })
    if (requeued.length === 0) throw new TransitionRefused(`run ${runId} could not be queued again from ${run.state}`)
    runState = 'queued'
  } else if (run.state === 'running') {
    // The next task that ends in this run looks at the whole run, not only its own downstream.
    await q.query('UPDATE cairn.run SET throttled = true WHERE run_id = $1', [runId])
  }
  await q.query('SELECT pg_notify($1, $2)', ['cairn_wake', run.dagId])
  return { ok: true, previous: marked[0]!.from, cleared, runState }
}
