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
import { TASK_STATE_LIST, isTerminalTaskState } from '../state/states.ts'
import { DEFAULT_QUEUE, enqueueJobs } from '../queue/task-queue.ts'
import type { Queryable } from './queryable.ts'
import { perDatabase } from './queryable.ts'
import { getDagVersion } from './dags.ts'
import { transitionRuns, transitionTasks } from './transitions.ts'

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
  const started = (await transitionRuns(q, { to: 'running', runIds: toStart, reason: 'started', set: { startedAt: ctx.now() } })).map((r) => r.runId)
  for (const runId of started) await advanceRun(q, ctx, runId)
  return started
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

const TERMINAL = `(${TASK_STATE_LIST.filter(isTerminalTaskState).map((s) => `'${s}'`).join(', ')})`

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
const POOL_CACHE_MS = 5000
const poolLimitCache = perDatabase((): { at: number; slots: Map<string, number> | undefined } => ({ at: 0, slots: undefined }))

/** The pools that have a slot limit, and their limits (cached per database for a few seconds). */
export async function limitedPoolSlots(q: Queryable): Promise<Map<string, number>> {
  const cache = poolLimitCache(q)
  if (cache.slots && Date.now() - cache.at < POOL_CACHE_MS) return cache.slots
  const { rows } = await q.query<{ name: string; slots: number }>('SELECT name, slots FROM cairn.pool WHERE slots IS NOT NULL')
  cache.slots = new Map(rows.map((r) => [r.name, r.slots]))
  cache.at = Date.now()
  return cache.slots
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
  for (const to of ['skipped', 'upstream_failed'] as const) {
    const settle = decisions.filter((d) => d.kind === 'settle_task' && d.to === to) as Extract<Decision, { kind: 'settle_task' }>[]
    await transitionTasks(q, {
      to,
      from: ['pending'],
      changes: settle.map((d) => ({ runId, taskId: d.taskId, reason: d.reason, set: { endedAt: now, message: d.reason } })),
    })
  }
  const queue = decisions.filter((d) => d.kind === 'queue_task')
  if (queue.length > 0) {
    const queued = await transitionTasks(q, {
      to: 'queued',
      from: ['pending', 'up_for_retry'],
      changes: queue.map((d) => ({
        runId,
        taskId: d.taskId,
        reason: d.retry ? 'retry' : 'upstream done',
        set: { attempt: 'next', queuedAt: now, nextRetryAt: null, startedAt: null, endedAt: null, failureKind: null, message: null, outputs: null },
      })),
    })
    if (queued.length > 0) {
      await q.query(
        `INSERT INTO cairn.attempt (run_id, task_id, attempt, state, queued_at)
         SELECT $1, task_id, attempt, 'queued', $4 FROM unnest($2::text[], $3::int[]) AS a(task_id, attempt)`,
        [runId, queued.map((t) => t.taskId), queued.map((t) => t.attempt), now],
      )
      const priority = new Map(queue.map((d) => [d.taskId, d.priority]))
      const queueOf = new Map(dag.tasks.map((t) => [t.id, t.queue]))
      await enqueueJobs(ctx.boss, q, queued.map((t) => ({ runId, taskId: t.taskId, attempt: t.attempt, priority: priority.get(t.taskId) ?? 0, queue: queueOf.get(t.taskId) ?? DEFAULT_QUEUE })))
    }
  }
  for (const d of decisions) {
    if (d.kind !== 'finish_run') continue
    const finished = await transitionRuns(q, { to: d.to, from: ['running'], runIds: [runId], reason: d.reason, set: { endedAt: now } })
    // Its slot is free: the DAG's next queued run may start (the caller's loop picks it up).
    if (finished.length > 0) await q.query('SELECT pg_notify($1, $2)', ['cairn_wake', dag.id])
  }
}
