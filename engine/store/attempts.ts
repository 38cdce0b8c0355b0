/**
 * Attempts: a worker claims one, heartbeats it and reports its result. Every write after the claim
 * is fenced by the claim id, so a worker that was declared lost (or whose attempt was cancelled or
 * handed back) can never overwrite a newer attempt.
 */
import type { FailureKind } from '../../operators/define.ts'
import type { TaskSpec } from '../spec/dag-model.ts'
import { retryDelayMs } from '../state/retry.ts'
import type { Queryable } from './queryable.ts'
import { appendHistory } from './history.ts'

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
  runParams: Record<string, unknown>
}

/** Takes a queued attempt for this worker; undefined when it is no longer queued (cancelled, stale job). */
export async function claimAttempt(q: Queryable, job: { runId: string; taskId: string; attempt: number }, workerId: string, now: Date): Promise<Claim | undefined> {
  // One statement: claim the attempt, start the task instance, record the history.
  const { rows } = await q.query<{
    claim_id: string
    version_id: string
    dag_id: string
    logical_date: Date
    data_interval_start: Date
    data_interval_end: Date
    params: Record<string, unknown>
  }>(
    `WITH claimed AS (
       UPDATE cairn.attempt a SET state = 'running', claim_id = gen_random_uuid(), worker_id = $4, started_at = $5, heartbeat_at = $5
       FROM cairn.task_instance ti, cairn.run r
       WHERE a.run_id = $1 AND a.task_id = $2 AND a.attempt = $3 AND a.state = 'queued'
         AND ti.run_id = a.run_id AND ti.task_id = a.task_id AND ti.attempt = a.attempt AND ti.state = 'queued'
         AND r.run_id = a.run_id AND r.state = 'running'
       RETURNING a.claim_id, r.version_id, r.dag_id, r.logical_date, r.data_interval_start, r.data_interval_end, r.params
     ), started AS (
       UPDATE cairn.task_instance SET state = 'running', started_at = $5
       WHERE run_id = $1 AND task_id = $2 AND attempt = $3 AND EXISTS (SELECT 1 FROM claimed)
     ), history AS (
       INSERT INTO cairn.state_history (run_id, task_id, attempt, from_state, to_state, reason)
       SELECT $1, $2, $3, 'queued', 'running', 'claimed by ' || $4 FROM claimed
     )
     SELECT * FROM claimed`,
    [job.runId, job.taskId, job.attempt, workerId, now],
  )
  const row = rows[0]
  if (!row) return undefined
  return {
    claimId: row.claim_id,
    runId: job.runId,
    taskId: job.taskId,
    attempt: job.attempt,
    versionId: Number(row.version_id),
    dagId: row.dag_id,
    logicalDate: row.logical_date,
    dataIntervalStart: row.data_interval_start,
    dataIntervalEnd: row.data_interval_end,
    runParams: row.params,
  }
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

/** The common case in one statement: attempt, task instance and history together. */
async function finishSuccess(q: Queryable, claimId: string, outputs: Record<string, unknown>, now: Date): Promise<{ runId: string; taskId: string; attempt: number } | undefined> {
  const { rows } = await q.query<{ run_id: string; task_id: string; attempt: number }>(
    `WITH done AS (
       UPDATE cairn.attempt SET state = 'success', ended_at = $2 WHERE claim_id = $1 AND state = 'running'
       RETURNING run_id, task_id, attempt
     ), ti AS (
       UPDATE cairn.task_instance t SET state = 'success', ended_at = $2, outputs = $3
       FROM done WHERE t.run_id = done.run_id AND t.task_id = done.task_id AND t.attempt = done.attempt AND t.state = 'running'
       RETURNING t.run_id
     ), history AS (
       INSERT INTO cairn.state_history (run_id, task_id, attempt, from_state, to_state, reason)
       SELECT run_id, task_id, attempt, 'running', 'success', 'succeeded' FROM done
     )
     SELECT run_id, task_id, attempt FROM done`,
    [claimId, now, JSON.stringify(outputs)],
  )
  const row = rows[0]
  return row ? { runId: row.run_id, taskId: row.task_id, attempt: row.attempt } : undefined
}

/** The task instance side of an attempt's end (also used when the scheduler declares an attempt lost). */
export async function settleTaskInstance(q: Queryable, at: { runId: string; taskId: string; attempt: number }, task: TaskSpec, outcome: AttemptOutcome, now: Date): Promise<void> {
  const where = 'WHERE run_id = $1 AND task_id = $2 AND attempt = $3 AND state = $4'
  const base = [at.runId, at.taskId, at.attempt, 'running']
  let to: string
  let reason: string
  if (outcome.kind === 'success') {
    to = 'success'
    reason = 'succeeded'
    await q.query(`UPDATE cairn.task_instance SET state = 'success', ended_at = $5, outputs = $6 ${where}`, [...base, now, JSON.stringify(outcome.outputs)])
  } else if (outcome.kind === 'skipped') {
    to = 'skipped'
    reason = outcome.reason
    await q.query(`UPDATE cairn.task_instance SET state = 'skipped', ended_at = $5, message = $6 ${where}`, [...base, now, outcome.reason])
  } else if (outcome.kind === 'handed_back') {
    to = 'queued'
    reason = outcome.reason
    await q.query(`UPDATE cairn.task_instance SET state = 'queued', started_at = NULL ${where}`, base)
  } else {
    const { rows } = await q.query<{ failures: number }>(`SELECT failures FROM cairn.task_instance ${where}`, base)
    if (!rows[0]) return
    const failures = rows[0].failures + 1
    const retry = outcome.retryable && failures <= task.retries
    to = outcome.failure === 'cancelled' ? 'cancelled' : retry ? 'up_for_retry' : 'failed'
    reason = `${outcome.failure}: ${outcome.message}`
    const delay = retry ? retryDelayMs({ attempt: failures, retryDelayMs: task.retryDelayMs, backoff: task.retryBackoff, maxRetryDelayMs: task.maxRetryDelayMs }) : 0
    await q.query(
      `UPDATE cairn.task_instance SET state = $5, failures = $6, next_retry_at = $7, ended_at = CASE WHEN $5 = 'up_for_retry' THEN NULL ELSE $8::timestamptz END,
         failure_kind = $9, message = $10, outputs = COALESCE($11, outputs) ${where}`,
      [...base, to, failures, retry ? new Date(now.getTime() + delay) : null, now, outcome.failure, outcome.message, outcome.outputs ? JSON.stringify(outcome.outputs) : null],
    )
  }
  await appendHistory(q, [{ runId: at.runId, taskId: at.taskId, attempt: at.attempt, from: 'running', to, reason }])
}

/** Running attempts whose worker stopped heartbeating; locked so only one scheduler handles each. */
export async function lockLostAttempts(q: Queryable, staleBefore: Date, limit = 100): Promise<{ claimId: string; runId: string; taskId: string; attempt: number; workerId: string | null }[]> {
  const { rows } = await q.query<{ claim_id: string; run_id: string; task_id: string; attempt: number; worker_id: string | null }>(
    `SELECT claim_id, run_id, task_id, attempt, worker_id FROM cairn.attempt
     WHERE state = 'running' AND heartbeat_at < $1 ORDER BY heartbeat_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [staleBefore, limit],
  )
  return rows.map((r) => ({ claimId: r.claim_id, runId: r.run_id, taskId: r.task_id, attempt: r.attempt, workerId: r.worker_id }))
}
