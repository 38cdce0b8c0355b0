/**
 * Dispatch of task attempts through pg-boss. Jobs are inserted in the same transaction that queues
 * the task instance, so a task is queued in cairn exactly when its job exists. pg-boss's own retries
 * are off: cairn decides retries (its attempts are fenced, pg-boss jobs are only the delivery).
 */
import { PgBoss } from 'pg-boss'
import type { ConstructorOptions, Db as BossDb, Queue } from 'pg-boss'
import type { Logger } from 'pino'
import type { Queryable } from '../store/queryable.ts'

export const TASK_QUEUE = 'cairn-tasks'
export const BOSS_SCHEMA = 'pgboss'
/** The cairn queue of a task that names none, and the one a worker serves unless told otherwise. */
export const DEFAULT_QUEUE = 'default'

/**
 * The pg-boss queue of a cairn queue (`queue:` of a task, `workers.queues` of a worker): the default
 * one keeps the name it always had, the others get their own (`cairn-tasks.team_a`). cairn queue names
 * match ^[a-z][a-z0-9_-]{0,63}$, within what pg-boss accepts ([\w.\-/]+).
 */
function bossQueueName(queue: string): string {
  return queue === DEFAULT_QUEUE ? TASK_QUEUE : `${TASK_QUEUE}.${queue}`
}

export interface TaskJob {
  runId: string
  taskId: string
  attempt: number
}

export interface QueuedJob extends TaskJob {
  priority: number
  /** The task's cairn queue (its `queue:`). */
  queue: string
}

/** Workers LISTEN here; every enqueue notifies it in the same transaction (so at commit). */
export const JOBS_CHANNEL = 'cairn_jobs'

/**
 * Inserts jobs through the caller's transaction and wakes idle workers. cairn runs its own fetch
 * loop rather than pg-boss's `work()`: pg-boss wakes each worker once per NOTIFY and then falls
 * back to a 30 s backstop poll at batch size 1, so a bulk insert of many jobs would be picked up
 * one per worker slot per 30 s. Here a slot fetches again as soon as it finishes a job.
 */
export async function enqueueJobs(boss: PgBoss, q: Queryable, jobs: readonly QueuedJob[], options: { notify?: boolean } = {}): Promise<void> {
  if (jobs.length === 0) return
  // pg-boss's documented way to insert inside someone else's transaction: a `db` adapter.
  const db: BossDb = { executeSql: (text, values) => q.query(text, values) }
  const byQueue = new Map<string, QueuedJob[]>()
  for (const j of jobs) {
    const some = byQueue.get(j.queue)
    if (some) some.push(j)
    else byQueue.set(j.queue, [j])
  }
  for (const [queue, some] of byQueue) {
    const name = await ensureTaskQueue(boss, queue)
    await boss.insert(
      name,
      some.map((j) => ({ data: { runId: j.runId, taskId: j.taskId, attempt: j.attempt }, priority: j.priority })),
      { db },
    )
  }
  if (options.notify !== false) await q.query('SELECT pg_notify($1, $2)', [JOBS_CHANNEL, String(jobs.length)])
}

export interface BossOptions {
  url: string
  log: Logger
  /** Connections in pg-boss's own pool. */
  max?: number
}

/**
 * What pg-boss keeps, bounded (pg-boss 12 has no archive table: a job row is deleted by its own
 * maintenance, run by every supervising process at most once per maintenance interval):
 * finished jobs (completed, failed, cancelled) a day after they finish, jobs never fetched after 14
 * days. Its warning and queue-statistics tables stay empty (persistWarnings, persistQueueStats off).
 * cairn's own history (runs, attempts, logs) is what `cairn db prune` and `retention` are for.
 */
export const QUEUE_RETENTION = { deleteAfterSeconds: 24 * 3600, retentionSeconds: 14 * 24 * 3600 } as const
/** How often a supervising process deletes finished jobs. */
const MAINTENANCE_INTERVAL_S = 3600

/** Starts pg-boss (creating its schema on first use) and the default task queue with NOTIFY on. */
export async function startBoss({ url, log, max = 4 }: BossOptions): Promise<PgBoss> {
  const options: ConstructorOptions = { connectionString: url, schema: BOSS_SCHEMA, max, useListenNotify: true, supervise: true, maintenanceIntervalSeconds: MAINTENANCE_INTERVAL_S, schedule: false, application_name: 'cairn-queue' }
  const boss = new PgBoss(options)
  // pg-boss reports every failed poll while the database is away; one line each is enough.
  boss.on('error', (error: unknown) => log.warn({ error: error instanceof Error ? error.message : String(error) }, 'queue error'))
  await boss.start()
  try {
    await ensureTaskQueue(boss, DEFAULT_QUEUE)
  } catch (error) {
    await boss.stop({ graceful: false, close: true }).catch(() => undefined)
    throw error
  }
  return boss
}

/** The pg-boss queues each pg-boss instance has made sure exist. */
const ensured = new WeakMap<PgBoss, Set<string>>()

/**
 * Creates the pg-boss queue of a cairn queue when it does not exist yet (all with the same settings),
 * and returns its name. Through pg-boss's own connections: creating a queue only inserts its row
 * (ON CONFLICT DO NOTHING), so it never waits on a caller's transaction.
 */
export async function ensureTaskQueue(boss: PgBoss, queue: string): Promise<string> {
  const name = bossQueueName(queue)
  let known = ensured.get(boss)
  if (!known) ensured.set(boss, (known = new Set()))
  if (known.has(name)) return name
  const existing = await boss.getQueue(name)
  if (!existing) {
    try {
      // pg-boss caps expiry at 24 h; cairn's own heartbeats, not pg-boss expiry, decide when an attempt is lost.
      const options: Omit<Queue, 'name'> = { retryLimit: 0, expireInSeconds: 24 * 3600, ...QUEUE_RETENTION, notify: true }
      await boss.createQueue(name, options)
    } catch (error) {
      // Another process created it at the same moment.
      if (!(await boss.getQueue(name))) throw error
    }
  } else if (!isBounded(existing)) {
    // A queue made with other settings (0 disables deletion): bound it; applies to jobs sent from now on.
    await boss.updateQueue(name, { ...QUEUE_RETENTION })
  }
  known.add(name)
  return name
}

function isBounded(queue: { deleteAfterSeconds?: number; retentionSeconds?: number }): boolean {
  const { deleteAfterSeconds: d, retentionSeconds: r } = queue
  return typeof d === 'number' && d > 0 && d <= QUEUE_RETENTION.deleteAfterSeconds && typeof r === 'number' && r <= QUEUE_RETENTION.retentionSeconds
}

/**
 * Attempts queued in cairn for longer than `olderThan` that no live queue job will ever deliver (its job
 * expired or was lost), locked for the caller's transaction so it can enqueue them again.
 */
export async function queuedAttemptsWithoutJob(q: Queryable, olderThan: Date, limit = 500): Promise<QueuedJob[]> {
  const { rows } = await q.query<{ run_id: string; task_id: string; attempt: number; priority: number; queue: string }>(
    `SELECT a.run_id, a.task_id, a.attempt, ti.priority, ti.queue FROM cairn.attempt a
       JOIN cairn.task_instance ti ON ti.run_id = a.run_id AND ti.task_id = a.task_id AND ti.attempt = a.attempt AND ti.state = 'queued'
     WHERE a.state = 'queued' AND a.queued_at < $1
       AND NOT EXISTS (
         SELECT 1 FROM ${BOSS_SCHEMA}.job j WHERE j.name = (CASE WHEN ti.queue = $4 THEN $2 ELSE $2 || '.' || ti.queue END) AND (j.state IN ('created', 'retry') OR (j.state = 'active' AND j.started_on > $1))
           AND j.data->>'runId' = a.run_id AND j.data->>'taskId' = a.task_id AND (j.data->>'attempt')::int = a.attempt)
     ORDER BY a.queued_at LIMIT $3 FOR UPDATE OF a SKIP LOCKED`,
    [olderThan, TASK_QUEUE, limit, DEFAULT_QUEUE],
  )
  return rows.map((r) => ({ runId: r.run_id, taskId: r.task_id, attempt: r.attempt, priority: r.priority, queue: r.queue }))
}
