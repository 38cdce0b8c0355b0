/**
 * Attempts: a worker claims one, heartbeats it and reports its result. Every write after the claim
 * is fenced by the claim id, so a worker that was declared lost (or whose attempt was cancelled or
 * handed back) can never overwrite a newer attempt.
 */
import type { FailureKind } from '../../operators/define.ts'
import type { TaskSpec } from '../dag/dag-model.ts'
import { retryDelayMs } from '../state/retry.ts'
import type { Queryable } from './queryable.ts'
import { TransitionRefused, transitionTasks, transitionTasksFrom } from './transitions.ts'
import type { TaskColumns } from './transitions.ts'
import type { RunType } from './runs.ts'

export interface Claim {
  claimId: string
  runId: string
  taskId: string
  attempt: number
  versionId: number
  dagId: string
  logicalDate: Date
  dataIntervalStart: Date
  dataIntervalEnd: Date
  runType: RunType
  runParams: Record<string, unknown>
  /**
   * The job an earlier holder of this attempt started (a worker that died or drained): the worker
   * re-attaches to it instead of starting another (engine/executors/executor.ts JobHandle).
   */
  executorHandle: Record<string, unknown> | null
  /** When the attempt first started (a re-attached attempt keeps its first start). */
  startedAt: Date
}

/**
 * Takes queued attempts for this worker in one statement (claim them, start their task instances,
 * record the history). Jobs whose attempt is no longer queued (cancelled, a stale job) are left out.
 * The attempts are locked before their task instances, the order every writer of both follows.
 */
export async function claimAttempts(q: Queryable, jobs: readonly { runId: string; taskId: string; attempt: number }[], workerId: string, now: Date): Promise<Claim[]> {
  if (jobs.length === 0) return []
  const rows = await transitionTasksFrom<{
    claim_id: string
    run_id: string
    task_id: string
    fence: number
    version_id: string
    dag_id: string
    logical_date: Date
    data_interval_start: Date
    data_interval_end: Date
    run_type: RunType
    params: Record<string, unknown>
    executor_handle: Record<string, unknown> | null
    attempt_started_at: Date
  }>(q, {
    to: 'running',
    from: ['queued'],
    source: {
      // An attempt handed on with its job (re-attach) keeps its first start: its timeout counts from there.
      sql: `UPDATE cairn.attempt a SET state = 'running', claim_id = gen_random_uuid(), worker_id = $4, heartbeat_at = $5,
              started_at = CASE WHEN a.executor_handle IS NULL THEN $5 ELSE coalesce(a.started_at, $5) END
            FROM unnest($1::text[], $2::text[], $3::int[]) AS w(run_id, task_id, attempt), cairn.task_instance ti, cairn.run r
            WHERE a.run_id = w.run_id AND a.task_id = w.task_id AND a.attempt = w.attempt AND a.state = 'queued'
              AND ti.run_id = a.run_id AND ti.task_id = a.task_id AND ti.attempt = a.attempt AND ti.state = 'queued'
              AND r.run_id = a.run_id AND r.state = 'running'
            RETURNING a.claim_id, a.run_id, a.task_id, a.attempt AS fence, 'claimed by ' || $4 AS reason, $5::timestamptz AS started_at,
              r.version_id, r.dag_id, r.logical_date, r.data_interval_start, r.data_interval_end, r.run_type, r.params, a.executor_handle, a.started_at AS attempt_started_at`,
      values: [jobs.map((j) => j.runId), jobs.map((j) => j.taskId), jobs.map((j) => j.attempt), workerId, now],
      columns: ['started_at'],
    },
  })
  // The statement saw each task instance queued at that attempt, and a cancel locks the attempt first.
  const refused = rows.filter((r) => !r.changed)
  if (refused.length > 0) throw new TransitionRefused(`claimed ${rows.length} attempts but ${refused.length} of their task instances could not start`)
  return rows.map((row) => ({
    claimId: row.claim_id,
    runId: row.run_id,
    taskId: row.task_id,
    attempt: row.fence,
    versionId: Number(row.version_id),
    dagId: row.dag_id,
    logicalDate: row.logical_date,
    dataIntervalStart: row.data_interval_start,
    dataIntervalEnd: row.data_interval_end,
    runType: row.run_type,
    runParams: row.params,
    executorHandle: row.executor_handle ?? null,
    startedAt: row.attempt_started_at,
  }))
}

export async function claimAttempt(q: Queryable, job: { runId: string; taskId: string; attempt: number }, workerId: string, now: Date): Promise<Claim | undefined> {
  return (await claimAttempts(q, [job], workerId, now))[0]
}

/** Refreshes the heartbeats of the given claims; returns the claims that are still held (the others must stop). */
export async function heartbeat(q: Queryable, claimIds: readonly string[], now: Date): Promise<Set<string>> {
  if (claimIds.length === 0) return new Set()
  const { rows } = await q.query<{ claim_id: string }>(
    `UPDATE cairn.attempt SET heartbeat_at = $2 WHERE claim_id = ANY($1::uuid[]) AND state = 'running' RETURNING claim_id`,
    [claimIds, now],
  )
  return new Set(rows.map((r) => r.claim_id))
}

/**
 * Records the job handle of an attempt before its job may run (re-attach, SPEC section 4 `train`).
 * Fenced: refused (false) once the attempt no longer holds its claim (cancelled, timed out, declared
 * lost, handed back), and when the attempt already names another job: one job per attempt, ever.
 * The executor then cancels the held job (or never lets its ranks start).
 * A Slurm handle recorded before sbatch was sent has `jobId: ''` and the job's unique `jobName`: it
 * may be completed with the id of the job of that very name, or replaced by the worker holding the
 * claim while no job id is known (the next name it is about to submit).
 */
export async function recordExecutorHandle(q: Queryable, claimId: string, handle: Record<string, unknown>): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE cairn.attempt SET executor_handle = $2::jsonb
      WHERE claim_id = $1 AND state = 'running'
        AND (executor_handle IS NULL OR executor_handle = $2::jsonb
             OR (executor_handle->>'jobId' = '' AND ($2::jsonb->>'jobId' = '' OR executor_handle->>'jobName' = $2::jsonb->>'jobName')))`,
    [claimId, JSON.stringify(handle)],
  )
  return (rowCount ?? 0) > 0
}

/** What the web page shows of an attempt's job (executor, job id, Slurm state, ranks with hosts); fenced like the handle. */
export interface ExecutorState {
  executor: 'slurm' | 'ssh' | 'local'
  job_id?: string
  state?: string
  ranks: { rank: number; host: string }[]
  updated_at: string
}

/**
 * Written by the claim's holder also after the attempt ended (a cancelled job's final CANCELLED); a claim
 * that was handed on (cleared) writes nothing.
 */
export async function recordExecutorState(q: Queryable, claimId: string, state: ExecutorState): Promise<boolean> {
  const { rowCount } = await q.query(`UPDATE cairn.attempt SET executor_state = $2::jsonb WHERE claim_id = $1`, [claimId, JSON.stringify(state)])
  return (rowCount ?? 0) > 0
}

/** Job states after which nothing runs any more (Slurm's final states, and what cairn writes itself). */
export const ENDED_JOB_STATES = ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE', 'OUT_OF_MEMORY', 'UNKNOWN', 'GONE']

/**
 * Cancelled attempts whose job may still run because no worker followed it when the cancel came (its
 * worker had died, or the attempt waited in the queue to be taken over): cancelled before `endedBefore`,
 * with a recorded job whose last known state is not a final one. Each is marked as being stopped by this
 * worker (another worker takes it again only after `retryBefore`), so one worker stops it.
 */
export async function takeUnstoppedJobs(q: Queryable, workerId: string, endedBefore: Date, retryBefore: Date, now: Date, limit = 10): Promise<{ runId: string; taskId: string; attempt: number; handle: Record<string, unknown> }[]> {
  const { rows } = await q.query<{ run_id: string; task_id: string; attempt: number; executor_handle: Record<string, unknown> }>(
    `UPDATE cairn.attempt a SET executor_state = coalesce(a.executor_state, '{}'::jsonb) || jsonb_build_object('stopping', jsonb_build_object('worker', $1::text, 'at', $4::timestamptz))
      FROM (SELECT run_id, task_id, attempt FROM cairn.attempt
             WHERE state = 'cancelled' AND executor_handle IS NOT NULL AND ended_at < $2
               AND coalesce(executor_state->>'state', '') <> ALL($5::text[])
               AND (executor_state->'stopping' IS NULL OR (executor_state->'stopping'->>'at')::timestamptz < $3)
             ORDER BY ended_at LIMIT $6 FOR UPDATE SKIP LOCKED) s
     WHERE a.run_id = s.run_id AND a.task_id = s.task_id AND a.attempt = s.attempt
     RETURNING a.run_id, a.task_id, a.attempt, a.executor_handle`,
    [workerId, endedBefore, retryBefore, now, ENDED_JOB_STATES, limit],
  )
  return rows.map((r) => ({ runId: r.run_id, taskId: r.task_id, attempt: r.attempt, handle: r.executor_handle }))
}

/** The final state of a job stopped by takeUnstoppedJobs' worker (the attempt is no longer anyone's claim). */
export async function recordStoppedJob(q: Queryable, at: { runId: string; taskId: string; attempt: number }, state: string, now: Date): Promise<void> {
  await q.query(
    `UPDATE cairn.attempt SET executor_state = (coalesce(executor_state, '{}'::jsonb) - 'stopping') || jsonb_build_object('state', $4::text, 'updated_at', $5::timestamptz)
      WHERE run_id = $1 AND task_id = $2 AND attempt = $3`,
    [at.runId, at.taskId, at.attempt, state, now],
  )
}

export type AttemptOutcome =
  | { kind: 'success'; outputs: Record<string, unknown> }
  | { kind: 'skipped'; reason: string }
  | { kind: 'failed'; failure: FailureKind; retryable: boolean; message: string; exitCode?: number | null; outputs?: Record<string, unknown> }
  | { kind: 'handed_back'; reason: string }

/**
 * Records the end of an attempt and moves its task instance on. Returns false when the claim is no
 * longer valid (the write is refused). The caller advances the run in the same transaction.
 */
export async function finishAttempt(q: Queryable, claimId: string, task: TaskSpec, outcome: AttemptOutcome, now: Date): Promise<{ runId: string; taskId: string; attempt: number } | undefined> {
  if (outcome.kind === 'success') return finishSuccess(q, claimId, outcome.outputs, now)
  const attemptState = outcome.kind === 'skipped' ? 'skipped' : outcome.kind === 'handed_back' ? 'queued' : outcome.failure === 'lost' ? 'lost' : outcome.failure === 'cancelled' ? 'cancelled' : 'failed'
  const message = outcome.kind === 'failed' ? outcome.message : outcome.reason
  const { rows } = await q.query<{ run_id: string; task_id: string; attempt: number }>(
    `UPDATE cairn.attempt SET state = $2, ended_at = CASE WHEN $2 = 'queued' THEN NULL ELSE $3::timestamptz END,
       claim_id = CASE WHEN $2 = 'queued' THEN NULL ELSE claim_id END, worker_id = CASE WHEN $2 = 'queued' THEN NULL ELSE worker_id END,
       exit_code = $4, failure_kind = $5, message = $6
     WHERE claim_id = $1 AND state = 'running'
     RETURNING run_id, task_id, attempt`,
    [claimId, attemptState, now, outcome.kind === 'failed' ? (outcome.exitCode ?? null) : null, outcome.kind === 'failed' ? outcome.failure : null, message],
  )
  const row = rows[0]
  if (!row) return undefined
  const at = { runId: row.run_id, taskId: row.task_id, attempt: row.attempt }
  await settleTaskInstance(q, at, task, outcome, now)
  return at
}

/** The common case: attempt, task instance and history together. */
async function finishSuccess(q: Queryable, claimId: string, outputs: Record<string, unknown>, now: Date): Promise<{ runId: string; taskId: string; attempt: number } | undefined> {
  return (await finishSuccesses(q, [{ claimId, outputs }], now))[0]
}

/** Successful attempts, many at once, in one statement; returns those whose claims were still held. */
export async function finishSuccesses(q: Queryable, done: readonly { claimId: string; outputs: Record<string, unknown> }[], now: Date): Promise<{ runId: string; taskId: string; attempt: number }[]> {
  if (done.length === 0) return []
  const rows = await transitionTasksFrom<{ run_id: string; task_id: string; fence: number }>(q, {
    to: 'success',
    from: ['running'],
    source: {
      sql: `UPDATE cairn.attempt a SET state = 'success', ended_at = $2
            FROM unnest($1::uuid[], $3::jsonb[]) AS i(claim_id, outputs) WHERE a.claim_id = i.claim_id AND a.state = 'running'
            RETURNING a.run_id, a.task_id, a.attempt AS fence, 'succeeded' AS reason, $2::timestamptz AS ended_at, i.outputs AS outputs`,
      values: [done.map((d) => d.claimId), now, done.map((d) => JSON.stringify(d.outputs))],
      columns: ['ended_at', 'outputs'],
    },
  })
  const refused = rows.filter((r) => !r.changed)
  if (refused.length > 0) throw new TransitionRefused(`${refused.length} attempts ended but their task instances were not running at that attempt`)
  return rows.map((row) => ({ runId: row.run_id, taskId: row.task_id, attempt: row.fence }))
}

/**
 * The task instance side of an attempt's end (also used when the scheduler declares an attempt
 * lost). The attempt's claim was still held, so its task instance must be running at that attempt:
 * anything else is a broken invariant and aborts the transaction.
 */
export async function settleTaskInstance(q: Queryable, at: { runId: string; taskId: string; attempt: number }, task: TaskSpec, outcome: AttemptOutcome, now: Date): Promise<void> {
  const key = { runId: at.runId, taskId: at.taskId, attempt: at.attempt }
  let changed: unknown[]
  if (outcome.kind === 'success') {
    changed = await transitionTasks(q, { to: 'success', from: ['running'], changes: [{ ...key, reason: 'succeeded', set: { endedAt: now, outputs: outcome.outputs } }] })
  } else if (outcome.kind === 'skipped') {
    changed = await transitionTasks(q, { to: 'skipped', from: ['running'], changes: [{ ...key, reason: outcome.reason, set: { endedAt: now, message: outcome.reason } }] })
  } else if (outcome.kind === 'handed_back') {
    // Same attempt, no failure counted: the attempt row went back to queued with it.
    changed = await transitionTasks(q, { to: 'queued', from: ['running'], changes: [{ ...key, reason: outcome.reason, set: { startedAt: null } }] })
  } else {
    const { rows } = await q.query<{ failures: number }>(`SELECT failures FROM cairn.task_instance WHERE run_id = $1 AND task_id = $2 AND attempt = $3 AND state = 'running'`, [at.runId, at.taskId, at.attempt])
    const failures = (rows[0]?.failures ?? 0) + 1
    const retry = outcome.retryable && failures <= task.retries
    const to = outcome.failure === 'cancelled' ? 'cancelled' : retry ? 'up_for_retry' : 'failed'
    const delay = retry ? retryDelayMs({ attempt: failures, retryDelayMs: task.retryDelayMs, backoff: task.retryBackoff, maxRetryDelayMs: task.maxRetryDelayMs }) : 0
    const set: TaskColumns = {
      failures,
      nextRetryAt: retry ? new Date(now.getTime() + delay) : null,
      endedAt: to === 'up_for_retry' ? null : now,
      failureKind: outcome.failure,
      message: outcome.message,
      // The latest attempt's outputs (SPEC section 5), never an earlier attempt's.
      outputs: outcome.outputs ?? null,
    }
    changed = await transitionTasks(q, { to, from: ['running'], changes: [{ ...key, reason: `${outcome.failure}: ${outcome.message}`, set }] })
  }
  if (changed.length === 0) throw new TransitionRefused(`attempt ${at.attempt} of ${at.runId}/${at.taskId} ended (${outcome.kind}) but its task instance was not running at that attempt`)
}

/** Running attempts whose worker stopped heartbeating; locked so only one scheduler handles each. */
export async function lockLostAttempts(q: Queryable, staleBefore: Date, limit = 100): Promise<{ claimId: string; runId: string; taskId: string; attempt: number; workerId: string | null; executorHandle: Record<string, unknown> | null }[]> {
  const { rows } = await q.query<{ claim_id: string; run_id: string; task_id: string; attempt: number; worker_id: string | null; executor_handle: Record<string, unknown> | null }>(
    `SELECT claim_id, run_id, task_id, attempt, worker_id, executor_handle FROM cairn.attempt
     WHERE state = 'running' AND heartbeat_at < $1 ORDER BY heartbeat_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [staleBefore, limit],
  )
  return rows.map((r) => ({ claimId: r.claim_id, runId: r.run_id, taskId: r.task_id, attempt: r.attempt, workerId: r.worker_id, executorHandle: r.executor_handle }))
}
