/**
 * Moves runs forward: starts queued runs within max_active_runs, and applies the pure decisions of
 * decide-run.ts to a run — all under row locks, in the caller's transaction. The scheduler loop, a
 * trigger and a worker that just finished a task all advance runs through these functions, so a
 * chain of tasks moves at the speed of the database, not of a polling loop.
 */
import type { PgBoss } from 'pg-boss'
import type { DagSpec } from '../dag/dag-model.ts'
import type { Decision, PoolCapacity } from '../state/decide-run.ts'
import { decideRun } from '../state/decide-run.ts'
import { downstreamOf } from '../graph/task-graph.ts'
import type { TaskState } from '../state/states.ts'
import { JOBS_CHANNEL, enqueueJobs } from '../queue/task-queue.ts'
import type { QueuedJob } from '../queue/task-queue.ts'
import type { Queryable } from './queryable.ts'
import { getDagVersion } from './dags.ts'
import { appendHistory } from './history.ts'
import type { HistoryEntry } from './history.ts'

export interface AdvanceContext {
  boss: PgBoss
  now: () => Date
}

/** Locks the DAG row and starts its oldest queued runs while fewer than max_active_runs run. */
export async function startQueuedRuns(q: Queryable, ctx: AdvanceContext, dagId: string): Promise<string[]> {
  const dag = await q.query<{ version_id: string | null }>('SELECT version_id FROM cairn.dag WHERE dag_id = $1 FOR UPDATE', [dagId])
  const current = dag.rows[0]
  if (!current || current.version_id === null) return []
  const spec = await getDagVersion(q, Number(current.version_id))
  const { rows } = await q.query<{ run_id: string; state: string }>(
    `SELECT run_id, state FROM cairn.run WHERE dag_id = $1 AND state IN ('queued', 'running') ORDER BY logical_date, run_id`,
    [dagId],
  )
  const running = rows.filter((r) => r.state === 'running').length
  const toStart = rows.filter((r) => r.state === 'queued').slice(0, Math.max(0, spec.maxActiveRuns - running)).map((r) => r.run_id)
  if (toStart.length === 0) return []
  await q.query(`UPDATE cairn.run SET state = 'running', started_at = $2 WHERE run_id = ANY($1::text[]) AND state = 'queued'`, [toStart, ctx.now()])
  await appendHistory(q, toStart.map((runId) => ({ runId, taskId: null, attempt: null, from: 'queued', to: 'running', reason: 'started' })))
  for (const runId of toStart) await advanceRun(q, ctx, runId)
  return toStart
}

/**
 * Locks one running run, decides, applies. Returns what was decided (empty when nothing changed).
 * Pools with a limit are locked (in name order, so two runs never deadlock) before they are counted.
 */
export async function advanceRun(q: Queryable, ctx: AdvanceContext, runId: string): Promise<Decision[]> {
  // Lock first, then read, in two statements: a statement's snapshot is taken when it starts, so
  // task instances read by the statement that waited for the lock would miss what the lock holder
  // committed (two upstreams finishing together would each miss the other, and the join below
  // them would wait for the scheduler's safety sweep).
  const locked = await q.query<{ version_id: string }>(`SELECT version_id FROM cairn.run WHERE run_id = $1 AND state = 'running' FOR UPDATE`, [runId])
  if (locked.rows.length === 0) return []
  const { rows } = await q.query<{ task_id: string; state: TaskState; attempt: number; next_retry_at: Date | null }>(
    'SELECT task_id, state, attempt, next_retry_at FROM cairn.task_instance WHERE run_id = $1',
    [runId],
  )
  const dag = await getDagVersion(q, Number(locked.rows[0]!.version_id))
  const tasks = new Map<string, { state: TaskState; attempt: number; nextRetryAt: Date | null }>()
  for (const r of rows) tasks.set(r.task_id, { state: r.state, attempt: r.attempt, nextRetryAt: r.next_retry_at })
  const pools = await poolCapacity(q, dag)
  const { decisions, heldBack } = decideRun(dag, { runId, tasks }, ctx.now(), pools)
  await applyDecisions(q, ctx, runId, dag, decisions)
  await q.query('UPDATE cairn.run SET throttled = $2 WHERE run_id = $1 AND throttled <> $2', [runId, heldBack])
  return decisions
}

const TERMINAL = `('success', 'failed', 'upstream_failed', 'skipped', 'cancelled')`

/**
 * After one task instance ended: decide for its downstream tasks only, reading just the states
 * they depend on. Falls back to the whole run when the run may be finished, when ready tasks were
 * held back by limits, or when a decision cascades (a skip or upstream_failed settles a task).
 * This keeps the cost of a finish independent of the size of the DAG.
 */
export async function advanceAfterTask(q: Queryable, ctx: AdvanceContext, runId: string, taskId: string): Promise<void> {
  await advanceAfterTasks(q, ctx, runId, [taskId])
}

/** advanceAfterTask for several task instances of one run that ended together (one lock, one read). */
export async function advanceAfterTasks(q: Queryable, ctx: AdvanceContext, runId: string, taskIds: readonly string[]): Promise<void> {
  const locked = await q.query<{ version_id: string; throttled: boolean }>(`SELECT version_id, throttled FROM cairn.run WHERE run_id = $1 AND state = 'running' FOR UPDATE`, [runId])
  const run = locked.rows[0]
  if (!run) return
  const dag = await getDagVersion(q, Number(run.version_id))
  const downstream = [...new Set(taskIds.flatMap((id) => downstreamOf(dag.tasks, id)))]
  const needed = new Set(downstream)
  for (const id of downstream) for (const up of dag.tasks.find((t) => t.id === id)?.dependsOn ?? []) needed.add(up)
  // One statement after the lock (so it sees everything committed by whoever held the lock before):
  // the states the downstream decisions need, and the run's open and active counts.
  const { rows } = await q.query<{ task_id: string | null; state: TaskState | null; attempt: number | null; next_retry_at: Date | null; open: string | null; active: string | null }>(
    `SELECT task_id, state, attempt, next_retry_at, NULL::bigint AS open, NULL::bigint AS active
       FROM cairn.task_instance WHERE run_id = $1 AND task_id = ANY($2::text[])
     UNION ALL
     SELECT NULL, NULL, NULL, NULL, count(*) FILTER (WHERE state NOT IN ${TERMINAL}), count(*) FILTER (WHERE state IN ('queued', 'running'))
       FROM cairn.task_instance WHERE run_id = $1`,
    [runId, [...needed]],
  )
  const counts = rows.find((r) => r.task_id === null)!
  if (run.throttled || Number(counts.open) === 0) {
    await advanceRun(q, ctx, runId)
    return
  }
  if (downstream.length === 0) return
  const tasks = new Map(rows.filter((r) => r.task_id !== null).map((r) => [r.task_id!, { state: r.state!, attempt: r.attempt!, nextRetryAt: r.next_retry_at }]))
  const pools = await poolCapacity(q, dag)
  const { decisions, heldBack } = decideRun(dag, { runId, tasks }, ctx.now(), pools, { only: new Set(downstream), active: Number(counts.active) })
  if (decisions.some((d) => d.kind === 'settle_task')) {
    await advanceRun(q, ctx, runId)
    return
  }
  await applyDecisions(q, ctx, runId, dag, decisions)
  if (heldBack) await q.query('UPDATE cairn.run SET throttled = true WHERE run_id = $1', [runId])
}

/** Pool limits change only when cairn.yaml is reloaded; a few seconds of staleness is harmless. */
let limitedPools: { at: number; slots: Map<string, number> } | undefined
const POOL_CACHE_MS = 5000

async function limitedPoolSlots(q: Queryable): Promise<Map<string, number>> {
  if (limitedPools && Date.now() - limitedPools.at < POOL_CACHE_MS) return limitedPools.slots
  const { rows } = await q.query<{ name: string; slots: number }>('SELECT name, slots FROM cairn.pool WHERE slots IS NOT NULL')
  limitedPools = { at: Date.now(), slots: new Map(rows.map((r) => [r.name, r.slots])) }
  return limitedPools.slots
}

async function poolCapacity(q: Queryable, dag: DagSpec): Promise<PoolCapacity> {
  const limits = await limitedPoolSlots(q)
  const used = [...new Set(dag.tasks.map((t) => t.pool))].filter((p) => limits.has(p)).sort()
  const capacity = new Map<string, number>()
  for (const pool of used.map((name) => ({ name, slots: limits.get(name)! }))) {
    await q.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`cairn.pool.${pool.name}`])
    const busy = await q.query<{ n: string }>(`SELECT count(*) AS n FROM cairn.task_instance WHERE pool = $1 AND state IN ('queued', 'running')`, [pool.name])
    capacity.set(pool.name, pool.slots - Number(busy.rows[0]!.n))
  }
  return capacity
}

async function applyDecisions(q: Queryable, ctx: AdvanceContext, runId: string, dag: DagSpec, decisions: readonly Decision[]): Promise<void> {
  if (decisions.length === 0) return
  const now = ctx.now()
  const history: HistoryEntry[] = []
  const settle = decisions.filter((d) => d.kind === 'settle_task')
  if (settle.length > 0) {
    await q.query(
      `UPDATE cairn.task_instance ti SET state = s.to_state, ended_at = $4, message = s.reason
       FROM unnest($2::text[], $3::text[], $5::text[]) AS s(task_id, to_state, reason)
       WHERE ti.run_id = $1 AND ti.task_id = s.task_id AND ti.state = 'pending'`,
      [runId, settle.map((d) => d.taskId), settle.map((d) => d.to), now, settle.map((d) => d.reason)],
    )
    for (const d of settle) history.push({ runId, taskId: d.taskId, attempt: null, from: 'pending', to: d.to, reason: d.reason })
  }
  const queue = decisions.filter((d) => d.kind === 'queue_task')
  if (queue.length > 0) {
    // Task instances, their new attempts and the history in one statement.
    const { rows } = await q.query<{ task_id: string; attempt: number; old_state: string }>(
      `WITH old AS (
         SELECT task_id, state FROM cairn.task_instance WHERE run_id = $1 AND task_id = ANY($2::text[]) AND state IN ('pending', 'up_for_retry')
       ), queued AS (
         UPDATE cairn.task_instance ti SET state = 'queued', attempt = ti.attempt + 1, queued_at = $3, next_retry_at = NULL,
           started_at = NULL, ended_at = NULL, failure_kind = NULL, message = NULL
         FROM old WHERE ti.run_id = $1 AND ti.task_id = old.task_id
         RETURNING ti.task_id, ti.attempt, old.state AS old_state
       ), attempts AS (
         INSERT INTO cairn.attempt (run_id, task_id, attempt, state, queued_at) SELECT $1, task_id, attempt, 'queued', $3 FROM queued
       ), history AS (
         INSERT INTO cairn.state_history (run_id, task_id, attempt, from_state, to_state, reason)
         SELECT $1, task_id, attempt, old_state, 'queued', CASE WHEN attempt > 1 THEN 'retry' ELSE 'upstream done' END FROM queued
       )
       SELECT task_id, attempt, old_state, pg_notify('${JOBS_CHANNEL}', '1') FROM queued`,
      [runId, queue.map((d) => d.taskId), now],
    )
    if (rows.length > 0) {
      const priority = new Map(queue.map((d) => [d.taskId, d.priority]))
      const jobs: QueuedJob[] = rows.map((r) => ({ runId, taskId: r.task_id, attempt: r.attempt, priority: priority.get(r.task_id) ?? 0 }))
      // Workers were woken by the statement above (NOTIFY is delivered at commit).
      await enqueueJobs(ctx.boss, q, jobs, { notify: false })
    }
  }
  for (const d of decisions) {
    if (d.kind !== 'finish_run') continue
    const { rowCount } = await q.query(`UPDATE cairn.run SET state = $2, ended_at = $3 WHERE run_id = $1 AND state = 'running'`, [runId, d.to, now])
    if ((rowCount ?? 0) > 0) {
      history.push({ runId, taskId: null, attempt: null, from: 'running', to: d.to, reason: d.reason })
      // Its slot is free: the DAG's next queued run may start (the caller's loop picks it up).
      await q.query('SELECT pg_notify($1, $2)', ['cairn_wake', dag.id])
    }
  }
  await appendHistory(q, history)
}
