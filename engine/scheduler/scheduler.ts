/**
 * The scheduler process: the plumbing around the pure decisions. Each pass syncs the DAG folder,
 * creates the runs cron says are due, starts queued runs, re-queues due retries and declares
 * attempts of silent workers lost. Any number of schedulers may share one database: every step
 * locks the rows it changes (SKIP LOCKED where another scheduler may take the work instead).
 */
import type { Logger } from 'pino'
import type { PgBoss } from 'pg-boss'
import type { DeploymentNames } from '../dag/dag-semantics.ts'
import type { DagSpec } from '../dag/dag-model.ts'
import { parseSchedule } from '../time/schedule.ts'
import type { Schedule } from '../time/schedule.ts'
import { parseDagDate } from '../time/dates.ts'
import { dueIntervals, nextInterval } from '../time/intervals.ts'
import { isConnectionError } from '../store/db.ts'
import type { Db } from '../store/db.ts'
import { enqueueJobs, queuedAttemptsWithoutJob } from '../queue/task-queue.ts'
import type { Queryable } from '../store/queryable.ts'
import { getDagVersion, setScheduleCursor } from '../store/dags.ts'
import { createRun } from '../store/runs.ts'
import { consumeDatasetVersions, datasetScheduleMaybeDue, datasetWaits } from '../store/dataset-schedules.ts'
import { datasetScheduleDue } from './dataset-schedule.ts'
import { advanceRun, startQueuedRuns } from '../store/advance.ts'
import type { AdvanceContext } from '../store/advance.ts'
import { finishAttempt, lockLostAttempts, settleTaskInstance } from '../store/attempts.ts'
import { TransitionRefused } from '../store/transitions.ts'
import { createDagSync } from './dag-sync.ts'
import { startPassStats } from './pass-stats.ts'
import { startRetention } from './retention.ts'
import type { RetentionSettings } from '../config/retention.ts'

export interface SchedulerOptions {
  db: Db
  boss: PgBoss
  log: Logger
  dagsFolder: string
  cwd: string
  names: DeploymentNames | undefined
  now?: () => Date
  /** Pause between passes when nothing wakes the scheduler. @default 1000 */
  loopMs?: number
  /** A running attempt without a heartbeat for this long is lost. @default 30000 */
  lostAfterMs?: number
  /** How often the DAG folder is checked for changes. @default 2000 */
  syncEveryMs?: number
  /** cairn.yaml `retention`: delete old finished runs periodically. @default undefined (keep them) */
  retention?: RetentionSettings
}

export interface Scheduler {
  /** One full pass; exposed for tests and `cairn up --once`. */
  tick(): Promise<void>
  stop(): Promise<void>
}

export async function startScheduler(options: SchedulerOptions): Promise<Scheduler> {
  const { db, log } = options
  const now = options.now ?? (() => new Date())
  const ctx: AdvanceContext = { boss: options.boss, now }
  const loopMs = options.loopMs ?? 1000
  const lostAfterMs = options.lostAfterMs ?? 30_000
  const syncEveryMs = options.syncEveryMs ?? 2000
  const sync = createDagSync({ folder: options.dagsFolder, cwd: options.cwd, names: options.names, log })
  /** Earliest time each DAG can have a new interval due, keyed by DAG and cursor. */
  const notBefore = new Map<string, { key: string; at: number }>()
  let lastSync = 0
  let lastSweep = 0
  let lastRequeue = Date.now()
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined
  let again = false

  /**
   * Since when this scheduler has reached the database without a break (undefined: it cannot now).
   * Workers cannot heartbeat while the database is away either, so their silence only counts from
   * here: after starting, or after an outage, nothing is declared lost for lostAfterMs.
   */
  let reachableSince: number | undefined = now().getTime()

  const tick = async (): Promise<void> => {
    try {
      const started = Date.now()
      if (started - lastSync >= syncEveryMs) {
        lastSync = started
        await sync.sync(db)
      }
      if (stopped) return
      await createScheduledRuns()
      if (stopped) return
      await startQueued()
      await advanceDue(started - lastSweep >= 10_000)
      if (started - lastSweep >= 10_000) lastSweep = started
      reachableSince ??= now().getTime()
      if (now().getTime() - reachableSince >= lostAfterMs) await reapLost()
      if (started - lastRequeue >= lostAfterMs) {
        lastRequeue = started
        await requeueOrphans()
      }
    } catch (error) {
      if (isConnectionError(error)) reachableSince = undefined
      throw error
    }
  }

  async function createScheduledRuns(): Promise<void> {
    const { rows } = await db.query<{ dag_id: string; version_id: string; schedule_cursor: Date | null; enabled_at: Date | null }>(
      'SELECT dag_id, version_id, schedule_cursor, enabled_at FROM cairn.dag WHERE NOT paused AND NOT removed AND version_id IS NOT NULL',
    )
    const t = now()
    for (const row of rows) {
      // A stopping scheduler creates no more runs (its process may be draining its workers).
      if (stopped) return
      const spec = await getDagVersion(db, Number(row.version_id))
      if (spec.scheduleDatasets !== undefined && (await datasetScheduleMaybeDue(db, spec.id, spec.scheduleDatasets))) await db.tx((q) => createDatasetTriggered(q, spec, Number(row.version_id)))
      if (spec.schedule === undefined || spec.startDate === undefined) continue
      const key = `${row.version_id}:${row.schedule_cursor?.getTime() ?? ''}`
      const hint = notBefore.get(row.dag_id)
      if (hint && hint.key === key && t.getTime() < hint.at) continue
      const schedule = parseSchedule(spec.schedule, spec.timezone)
      if (!schedule.ok) continue
      const created = await db.tx((q) => createDue(q, spec, Number(row.version_id), schedule.schedule))
      if (created === 0) {
        const start = parseDagDate(spec.startDate, spec.timezone)!
        const end = spec.endDate ? parseDagDate(spec.endDate, spec.timezone) : undefined
        const next = nextInterval(schedule.schedule, spec.timezone, row.schedule_cursor ? new Date(row.schedule_cursor.getTime() + 1) : undefined, start, end)
        notBefore.set(row.dag_id, { key, at: next ? next.end.getTime() : Number.POSITIVE_INFINITY })
      }
    }
  }

  /** Creates due runs for one DAG under its row lock, within max_active_runs; returns how many. */
  async function createDue(q: Queryable, spec: DagSpec, versionId: number, schedule: Schedule): Promise<number> {
    const locked = await q.query<{ schedule_cursor: Date | null; enabled_at: Date | null }>(
      'SELECT schedule_cursor, enabled_at FROM cairn.dag WHERE dag_id = $1 AND NOT paused FOR UPDATE SKIP LOCKED',
      [spec.id],
    )
    const dag = locked.rows[0]
    if (!dag) return 0
    const room = spec.maxActiveRuns - (await activeRuns(q, spec.id))
    if (room <= 0) return 0
    const start = parseDagDate(spec.startDate!, spec.timezone)!
    const end = spec.endDate ? parseDagDate(spec.endDate, spec.timezone) : undefined
    const due = dueIntervals({
      schedule,
      timezone: spec.timezone,
      startDate: start,
      ...(end ? { endDate: end } : {}),
      catchup: spec.catchup,
      lastLogicalDate: dag.schedule_cursor ?? undefined,
      now: now(),
      limit: room,
      enabledAt: dag.enabled_at ?? undefined,
    })
    for (const interval of due) {
      await createRun(q, { dag: spec, versionId, runType: 'scheduled', logicalDate: interval.start, dataIntervalStart: interval.start, dataIntervalEnd: interval.end, params: defaultParams(spec) })
    }
    if (due.length > 0) {
      await setScheduleCursor(q, spec.id, due[due.length - 1]!.start)
      await startQueuedRuns(q, ctx, spec.id)
      log.info({ dag: spec.id, runs: due.length, first: due[0]!.start.toISOString() }, 'scheduled runs created')
    }
    return due.length
  }

  /**
   * `schedule: { datasets }`: one run once every listed dataset has a new version since the last such
   * run, under the DAG's row lock and within max_active_runs; the versions it was created for are
   * consumed in the same transaction. Its data interval is the instant it was created, as a manual run's.
   */
  async function createDatasetTriggered(q: Queryable, spec: DagSpec, versionId: number): Promise<void> {
    const locked = await q.query('SELECT 1 FROM cairn.dag WHERE dag_id = $1 AND NOT paused FOR UPDATE SKIP LOCKED', [spec.id])
    if (locked.rows.length === 0) return
    const waits = await datasetWaits(q, spec.id, spec.scheduleDatasets!)
    if (!datasetScheduleDue(waits)) return
    if ((await activeRuns(q, spec.id)) >= spec.maxActiveRuns) return
    const at = now()
    const run = await createRun(q, { dag: spec, versionId, runType: 'dataset', logicalDate: at, dataIntervalStart: at, dataIntervalEnd: at, params: defaultParams(spec), ownsLogicalDate: false })
    if (!run) return
    await consumeDatasetVersions(q, spec.id, waits)
    await startQueuedRuns(q, ctx, spec.id)
    log.info({ dag: spec.id, run: run.runId, datasets: Object.fromEntries(waits.map((w) => [w.dataset, w.latest])) }, 'dataset-triggered run created')
  }

  async function startQueued(): Promise<void> {
    const { rows } = await db.query<{ dag_id: string }>(`SELECT DISTINCT dag_id FROM cairn.run WHERE state = 'queued'`)
    for (const { dag_id } of rows) await db.tx((q) => startQueuedRuns(q, ctx, dag_id))
  }

  /** Runs with a retry that is due, or (every 10 s, as a safety net) every running run. */
  async function advanceDue(all: boolean): Promise<void> {
    const { rows } = all
      ? await db.query<{ run_id: string }>(`SELECT run_id FROM cairn.run WHERE state = 'running'`)
      : await db.query<{ run_id: string }>(`SELECT DISTINCT run_id FROM cairn.task_instance WHERE state = 'up_for_retry' AND next_retry_at <= $1`, [now()])
    for (const { run_id } of rows) await db.tx((q) => advanceRun(q, ctx, run_id))
  }

  /**
   * Attempts queued in cairn whose queue job is gone, or was fetched long ago by a worker that died
   * before claiming it (claims follow fetches at once), would wait forever: give them a new job.
   * Only attempts queued for longer than lostAfterMs.
   */
  async function requeueOrphans(): Promise<void> {
    await db.tx(async (q) => {
      const rows = await queuedAttemptsWithoutJob(q, new Date(now().getTime() - lostAfterMs))
      if (rows.length === 0) return
      await enqueueJobs(options.boss, q, rows)
      log.warn({ attempts: rows.length }, 'queued attempts without a queue job were queued again')
    })
  }

  async function reapLost(): Promise<void> {
    const staleBefore = new Date(now().getTime() - lostAfterMs)
    await db.tx(async (q) => {
      const lost = await lockLostAttempts(q, staleBefore)
      for (const attempt of lost) {
        const run = await q.query<{ version_id: string }>('SELECT version_id FROM cairn.run WHERE run_id = $1', [attempt.runId])
        const spec = await getDagVersion(q, Number(run.rows[0]!.version_id))
        const task = spec.tasks.find((t) => t.id === attempt.taskId)
        if (!task) continue
        const message = `worker ${attempt.workerId ?? '?'} stopped heartbeating for ${Math.round(lostAfterMs / 1000)} s`
        if (attempt.executorHandle !== null) {
          // Its job (a Slurm job, SSH ranks) outlives the worker: the same attempt goes to another
          // worker, which re-attaches to that job (or collects its result if it ended meanwhile).
          // No failure is counted and no second job is started.
          let handedOn: { runId: string } | undefined
          try {
            handedOn = await finishAttempt(q, attempt.claimId, task, { kind: 'handed_back', reason: `${message}; its job is taken over by another worker` }, now())
          } catch (error) {
            if (!(error instanceof TransitionRefused)) throw error
            log.error({ run: attempt.runId, task: attempt.taskId, attempt: attempt.attempt, error: error.message }, 'lost attempt: its task instance could not be settled')
            continue
          }
          if (handedOn) {
            await enqueueJobs(options.boss, q, [{ runId: attempt.runId, taskId: attempt.taskId, attempt: attempt.attempt, priority: task.priority, queue: task.queue }])
            log.warn({ run: attempt.runId, task: attempt.taskId, attempt: attempt.attempt, worker: attempt.workerId, job: attempt.executorHandle }, 'attempt lost with its job still recorded; handed to another worker to re-attach')
          }
          continue
        }
        await q.query(`UPDATE cairn.attempt SET state = 'lost', ended_at = $2, failure_kind = 'lost', message = $3 WHERE claim_id = $1 AND state = 'running'`, [attempt.claimId, now(), message])
        try {
          await settleTaskInstance(q, attempt, task, { kind: 'failed', failure: 'lost', retryable: true, message }, now())
        } catch (error) {
          // The attempt stays lost; its task instance was moved by something else (the table refused this change).
          if (!(error instanceof TransitionRefused)) throw error
          log.error({ run: attempt.runId, task: attempt.taskId, attempt: attempt.attempt, error: error.message }, 'lost attempt: its task instance could not be settled')
          continue
        }
        log.warn({ run: attempt.runId, task: attempt.taskId, attempt: attempt.attempt, worker: attempt.workerId }, 'attempt lost')
        await advanceRun(q, ctx, attempt.runId)
      }
    })
  }

  let offline = false
  const loop = (): void => {
    if (stopped) return
    if (running) {
      again = true
      return
    }
    clearTimeout(timer)
    const passStarted = performance.now()
    running = tick()
      .then(() => {
        stats.observe((performance.now() - passStarted) / 1000)
        if (offline) log.info('database reachable again')
        offline = false
      })
      .catch((error: unknown) => {
        // While the database is away every pass fails the same way: say so once, quietly.
        if (isConnectionError(error)) {
          if (!offline) log.warn({ error: error instanceof Error ? error.message : String(error) }, 'database unreachable; the scheduler keeps retrying')
          offline = true
        } else log.error({ err: error }, 'scheduler pass failed; retrying')
      })
      .finally(() => {
        running = undefined
        if (stopped) return
        if (again) {
          again = false
          setImmediate(loop)
        } else timer = setTimeout(loop, loopMs)
      })
  }
  const stats = startPassStats(db, log)
  const retention = options.retention ? startRetention(db, log, options.retention, now) : undefined
  const unlisten = await db.listen('cairn_wake', () => loop(), { onReconnect: () => loop() })
  // The first pass (DAG folder loaded) is done before the scheduler counts as started.
  loop()
  await running
  return {
    tick,
    /** Ends the pass under way early (no runs created or started after this call) and stops. */
    async stop() {
      stopped = true
      clearTimeout(timer)
      await unlisten()
      await running
      await retention?.stop()
      await stats.stop()
    },
  }
}

function defaultParams(spec: DagSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, definition] of Object.entries(spec.params)) if (Object.hasOwn(definition, 'default')) out[name] = definition.default
  return out
}

/** Runs of the DAG that count against max_active_runs (queued or running). */
async function activeRuns(q: Queryable, dagId: string): Promise<number> {
  const { rows } = await q.query<{ n: string }>(`SELECT count(*) AS n FROM cairn.run WHERE dag_id = $1 AND state IN ('queued', 'running')`, [dagId])
  return Number(rows[0]!.n)
}
