/**
 * The worker process: takes task attempts from the queue, runs their operators, and reports the
 * results. It never sets a run's state itself; recording an attempt's end advances its run through
 * the same decision code the scheduler uses, in the same transaction.
 *
 * Work moves in batches so that many short tasks cost few round trips: the dispatcher fetches as
 * many jobs as there are free slots and claims them in one statement; attempts that end close
 * together are recorded in one transaction, with one advance per run (record-results.ts).
 *
 * Heartbeats keep claims alive and double as the cancel channel: a claim that is no longer held
 * (run cancelled, attempt declared lost) aborts its task. SIGTERM drains: no new work, running
 * tasks get a grace period, then are stopped and handed back to the queue without using a retry.
 *
 * While the database is away, tasks keep running: their log lines wait in a bounded buffer and their
 * results in memory (at most one per slot: no new work can be claimed meanwhile), and both are
 * written when it is back. Their claims are heartbeated until the results are recorded, so the
 * scheduler never declares a finished attempt lost because its result was late.
 */
import { hostname } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import { startStagedSweeper, startWorkSweeper } from './sweepers.ts'
import type { PgBoss } from 'pg-boss'
import type { Db } from '../store/db.ts'
import { isConnectionError } from '../store/db.ts'
import { DEFAULT_QUEUE, JOBS_CHANNEL, ensureTaskQueue } from '../queue/task-queue.ts'
import type { TaskJob } from '../queue/task-queue.ts'
import { claimAttempts, heartbeat, recordStoppedJob, takeUnstoppedJobs } from '../store/attempts.ts'
import { executorFor } from '../executors/index.ts'
import type { JobHandle } from '../executors/executor.ts'
import type { AttemptOutcome, Claim } from '../store/attempts.ts'
import type { TaskSpec } from '../dag/dag-model.ts'
import { executeAttempt } from './execute-attempt.ts'
import type { SecretStore } from '../secrets/secrets.ts'
import { taskAbort } from '../../operators/define.ts'
import { prepareWorkRoot } from '../process/attempt-dir.ts'
import type { TaskUser } from '../process/task-user.ts'
import { createOutageBuffer } from './outage-buffer.ts'
import { completeJobs, createResultRecorder } from './record-results.ts'
import type { JobRef } from './record-results.ts'
import type { DataSettings } from '../config/data-settings.ts'

export interface WorkerOptions {
  db: Db
  boss: PgBoss
  log: Logger
  /** Attempts run at once. @default 4 */
  slots?: number
  /** The cairn queues this worker takes tasks from (workers.queues, --queue). @default ['default'] */
  queues?: readonly string[]
  /** Where per-attempt working directories go (under CAIRN_HOME). */
  workRoot: string
  secrets: SecretStore
  /** The OS user tasks run as (resolveTaskUser); undefined: the worker's own user. */
  taskUser?: TaskUser
  /** The environment child processes inherit. */
  workerEnv: Readonly<Record<string, string | undefined>>
  /** @default 2000 */
  heartbeatMs?: number
  /** Backstop poll for work when no NOTIFY arrives. @default 2000 */
  pollMs?: number
  /** Between SIGTERM and SIGKILL when a task is stopped. @default 10000 */
  killGraceMs?: number
  /** Cap of each attempt's stored log in bytes (workers.max_log_bytes). @default 52428800 */
  maxLogBytes?: number
  /** Datasets and connections for the data operators (cairn.yaml `data`, `connections`). */
  data?: DataSettings
  now?: () => Date
}

export interface DrainOptions {
  /** Aborted: stop waiting for the grace period and hand running attempts back now. */
  urgent?: AbortSignal
  /** How long results may wait for the database once the attempts have ended. @default 15000 */
  recordMs?: number
  /** Called when the grace period ends (or `urgent` aborts) with attempts still running. */
  onHandBack?(running: number): void
}

export interface DrainReport {
  /** Attempts stopped and handed back to the queue. */
  handedBack: number
  /** Results that could not be recorded (database unreachable): those attempts will be declared lost and run again. */
  unrecorded: number
}

export interface Worker {
  workerId: string
  /** Attempts running now. */
  runningCount(): number
  /**
   * Stops taking work; running attempts get `graceMs`, then are stopped and handed back. Bounded in
   * time: about graceMs + killGraceMs + recordMs at most, whatever the database does.
   */
  drain(graceMs: number, options?: DrainOptions): Promise<DrainReport>
}

interface Running {
  claim: Claim
  job: JobRef
  controller: AbortController
  done: Promise<void>
}

export async function startWorker(options: WorkerOptions): Promise<Worker> {
  const { db, boss, log } = options
  const now = options.now ?? (() => new Date())
  const slots = options.slots ?? 4
  const pollMs = options.pollMs ?? 2000
  const queues = [...new Set(options.queues ?? [DEFAULT_QUEUE])]
  if (queues.length === 0) throw new Error('a worker needs at least one queue')
  const workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
  const running = new Map<string, Running>()
  const killGraceMs = options.killGraceMs ?? 10_000
  let draining = false
  /** Aborted when a stop gives up on results that wait for the database. */
  const giveUp = new AbortController()
  const writes = createOutageBuffer({ log })
  /** Results of ended attempts, recorded in batches; after each batch, work is looked for again. */
  const results = createResultRecorder({ db, boss, log, now, giveUp: giveUp.signal, afterBatch: () => kick() })

  await prepareWorkRoot(options.workRoot, options.taskUser, log)
  /** The pg-boss queues, in the order of `queues` (created when missing, so they can be fetched from). */
  const bossQueues: string[] = []
  for (const queue of queues) bossQueues.push(await ensureTaskQueue(boss, queue))
  await db.query(`INSERT INTO cairn.worker (worker_id, hostname, pid, state, slots) VALUES ($1, $2, $3, 'running', $4)`, [workerId, hostname(), process.pid, slots])

  // --- heartbeats and cancellation -------------------------------------------------------------
  let beatFailing = false
  const beat = async (): Promise<void> => {
    const claims = [...running.keys()]
    const held = await heartbeat(db, [...claims, ...results.unrecorded], now())
    const gone = claims.filter((claimId) => !held.has(claimId) && running.get(claimId)?.controller.signal.aborted === false)
    // An attempt handed to another worker with its job (this worker was declared lost while its job
    // ran on) is queued or running again: its job must be left to the worker that re-attaches.
    const handedOn = gone.length === 0 ? new Set<string>() : await handedOnClaims(gone.map((claimId) => running.get(claimId)!.claim))
    for (const claimId of gone) {
      const entry = running.get(claimId)
      if (!entry || entry.controller.signal.aborted) continue
      if (handedOn.has(claimId)) {
        log.warn({ run: entry.claim.runId, task: entry.claim.taskId, attempt: entry.claim.attempt }, 'attempt handed to another worker (this one was declared lost); leaving its job to that worker')
        entry.controller.abort(taskAbort('shutdown', 'the attempt was handed to another worker, which re-attaches to its job'))
        continue
      }
      log.info({ run: entry.claim.runId, task: entry.claim.taskId, attempt: entry.claim.attempt }, 'attempt no longer held (cancelled or lost); stopping it')
      entry.controller.abort(taskAbort('cancelled', 'the run was cancelled or the attempt was taken away'))
    }
    await db.query(`UPDATE cairn.worker SET heartbeat_at = $2, state = $3 WHERE worker_id = $1`, [workerId, now(), draining ? 'draining' : 'running'])
  }
  /** Of the given claims (no longer held), those whose attempt went on, with its job, to another worker. */
  const handedOnClaims = async (lost: readonly Claim[]): Promise<Set<string>> => {
    const { rows } = await db.query<{ run_id: string; task_id: string; attempt: number }>(
      `SELECT a.run_id, a.task_id, a.attempt FROM cairn.attempt a JOIN unnest($1::text[], $2::text[], $3::int[]) AS l(run_id, task_id, attempt)
         ON a.run_id = l.run_id AND a.task_id = l.task_id AND a.attempt = l.attempt
        WHERE a.state IN ('queued', 'running') AND a.executor_handle IS NOT NULL`,
      [lost.map((c) => c.runId), lost.map((c) => c.taskId), lost.map((c) => c.attempt)],
    )
    const key = (at: { runId: string; taskId: string; attempt: number }): string => `${at.runId}\t${at.taskId}\t${at.attempt}`
    const onward = new Set(rows.map((r) => key({ runId: r.run_id, taskId: r.task_id, attempt: r.attempt })))
    return new Set(lost.filter((c) => onward.has(key(c))).map((c) => c.claimId))
  }
  const heartbeatTimer = setInterval(() => {
    beat().then(
      () => {
        if (beatFailing) log.info('heartbeats resumed')
        beatFailing = false
      },
      (error: unknown) => {
        // While the database is away every heartbeat fails: say so once.
        if (!beatFailing || !isConnectionError(error)) log.warn({ error: String(error) }, 'heartbeat failed; will retry')
        beatFailing = true
      },
    )
  }, options.heartbeatMs ?? 2000)
  const unlistenCancel = await db.listen('cairn_cancel', () => void beat().catch(() => undefined))

  // --- jobs of cancelled attempts that nobody followed ------------------------------------------------
  // A run cancelled while its remote job had no worker (the worker died, or the attempt waited to be taken
  // over) leaves the job running: some worker re-attaches to it just to stop it. A job that the following
  // worker stopped has its final state recorded at once, so only jobs without one this long after the
  // cancel are taken.
  const heartbeatMs = options.heartbeatMs ?? 2000
  const orphanAfterMs = 15 * heartbeatMs
  let stoppingOrphans: Promise<void> | undefined
  const stopOrphans = async (): Promise<void> => {
    const t = now()
    const jobs = await takeUnstoppedJobs(db, workerId, new Date(t.getTime() - orphanAfterMs), new Date(t.getTime() - 10 * orphanAfterMs), t)
    for (const job of jobs) {
      const handle = job.handle as unknown as JobHandle
      const at = { run: job.runId, task: job.taskId, attempt: job.attempt, job: handle }
      const executor = executorFor(handle.executor, {
        ...('cluster' in handle && handle.cluster !== null ? { cluster: handle.cluster } : {}),
        ...(options.data ? { clusters: options.data.clusters, sshHosts: options.data.sshHosts } : {}),
        killGraceMs,
      })
      if ('error' in executor) {
        log.warn({ ...at, error: executor.error }, 'cannot stop the job of a cancelled attempt from this worker')
        continue
      }
      try {
        let state = 'CANCELLED'
        const followed = await executor.reattach(handle, { onLine: () => undefined, onProgress: (p) => void (p.state !== undefined && (state = p.state)), signal: new AbortController().signal })
        await followed.cancel('cancelled')
        const outcome = await followed.done
        if (!outcome.ok && outcome.kind === 'cancelled') state = 'CANCELLED'
        else if (!outcome.ok && outcome.kind === 'infrastructure' && /gone|vanished|no longer/.test(outcome.message)) state = 'GONE'
        await recordStoppedJob(db, job, state, now())
        log.warn({ ...at, state }, 'stopped the job of an attempt cancelled while no worker followed it')
      } catch (error) {
        log.warn({ ...at, error: String(error) }, 'could not stop the job of a cancelled attempt; another worker tries again later')
      } finally {
        await executor.close?.().catch(() => undefined)
      }
    }
  }
  // Staged folders left by writers that died before publishing (engine/data/staged-sweep.ts), and the
  // attempt folders of runs that retention deleted (work-sweep.ts).
  const sweepers = [
    ...(options.data ? [startStagedSweeper({ db, dir: options.data.dir, log })] : []),
    startWorkSweeper({ db, workRoot: options.workRoot, ...(options.taskUser ? { user: options.taskUser } : {}), log }),
  ]
  const orphanTimer = setInterval(() => {
    if (stoppingOrphans || draining) return
    stoppingOrphans = stopOrphans()
      .catch((error: unknown) => {
        if (!isConnectionError(error)) log.warn({ error: String(error) }, 'looking for unstopped jobs failed')
      })
      .finally(() => (stoppingOrphans = undefined))
  }, Math.max(1000, 2 * heartbeatMs))

  // --- running one attempt -------------------------------------------------------------------------
  const run = (claim: Claim, job: JobRef): void => {
    const controller = new AbortController()
    let resolveDone!: () => void
    running.set(claim.claimId, { claim, job, controller, done: new Promise((r) => (resolveDone = r)) })
    void (async () => {
      let finished: { task: TaskSpec; outcome: AttemptOutcome } | undefined
      try {
        const workdir = join(options.workRoot, claim.runId, claim.taskId, String(claim.attempt))
        finished = await executeAttempt({ db, claim, signal: controller.signal, workdir, ...(options.taskUser ? { user: options.taskUser } : {}), secrets: options.secrets, workerEnv: options.workerEnv, log, writes, killGraceMs, ...(options.maxLogBytes !== undefined ? { maxLogBytes: options.maxLogBytes } : {}), ...(options.data ? { data: options.data } : {}), now })
        if (draining && controller.signal.aborted && finished.outcome.kind === 'failed' && finished.outcome.failure === 'infrastructure') {
          finished = { task: finished.task, outcome: { kind: 'handed_back', reason: 'worker drained before the attempt finished' } }
        }
      } catch (error) {
        // Reading the DAG version failed (database away): the attempt stays running and is declared lost if this persists.
        log.error({ err: error, run: claim.runId, task: claim.taskId }, 'attempt could not run')
      }
      // The slot is free as soon as the work is done: the next batch is fetched while this result is recorded.
      running.delete(claim.claimId)
      kick()
      if (finished) await results.record({ claim, job, task: finished.task, outcome: finished.outcome })
      resolveDone()
    })()
  }

  // --- taking work ------------------------------------------------------------------------------------
  let fetching = false
  let pollTimer: NodeJS.Timeout | undefined
  const kick = (): void => {
    if (fetching || draining) return
    const free = slots - running.size
    if (free <= 0) return
    fetching = true
    clearTimeout(pollTimer)
    void takeWork(free)
      .then((got) => {
        fetching = false
        if (got > 0) kick()
        else pollTimer = setTimeout(kick, pollMs)
      })
      .catch((error: unknown) => {
        fetching = false
        if (!isConnectionError(error)) log.warn({ error: String(error) }, 'taking work failed; retrying')
        pollTimer = setTimeout(kick, pollMs)
      })
  }
  /** Where the next fetch starts: each turns to the next queue, so none starves the others. */
  let firstQueue = 0
  const takeWork = async (free: number): Promise<number> => {
    // Fair across queues: the free slots go to the queues in turn, starting one further each time;
    // slots a queue leaves unused go to the next ones.
    const start = firstQueue
    firstQueue = (firstQueue + 1) % bossQueues.length
    const jobs: { ref: JobRef; data: TaskJob }[] = []
    for (let i = 0; i < bossQueues.length && jobs.length < free; i++) {
      const queue = bossQueues[(start + i) % bossQueues.length]!
      const share = Math.max(1, Math.ceil((free - jobs.length) / (bossQueues.length - i)))
      for (const job of await boss.fetch<TaskJob>(queue, { batchSize: share })) jobs.push({ ref: { id: job.id, queue }, data: job.data })
    }
    // A second round for slots the fair shares left free (some queues had less than their share).
    for (let i = 0; i < bossQueues.length && jobs.length < free && bossQueues.length > 1; i++) {
      const queue = bossQueues[(start + i) % bossQueues.length]!
      for (const job of await boss.fetch<TaskJob>(queue, { batchSize: free - jobs.length })) jobs.push({ ref: { id: job.id, queue }, data: job.data })
    }
    if (jobs.length === 0) return 0
    const claims = await claimAttempts(db, jobs.map((j) => j.data), workerId, now())
    const byKey = new Map(claims.map((c) => [`${c.runId}\t${c.taskId}\t${c.attempt}`, c]))
    const stale: JobRef[] = []
    for (const job of jobs) {
      const claim = byKey.get(`${job.data.runId}\t${job.data.taskId}\t${job.data.attempt}`)
      if (claim) run(claim, job.ref)
      else stale.push(job.ref)
    }
    // Jobs whose attempt is no longer queued (cancelled runs, duplicates): nothing to do.
    if (stale.length > 0) await completeJobs(boss, stale).catch(() => undefined)
    return jobs.length
  }
  const unlistenJobs = await db.listen(JOBS_CHANNEL, kick, { onReconnect: kick })
  kick()
  log.info({ worker: workerId, slots, queues, runAs: options.taskUser?.name ?? 'the worker\'s own user' }, 'worker started')

  /** Resolves true when `until` settles first, false after `ms` or when `signal` aborts. */
  const settlesWithin = async (until: Promise<unknown>, ms: number, signal?: AbortSignal): Promise<boolean> => {
    const stop = new AbortController()
    const limit = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms)
      const abort = (): void => {
        clearTimeout(timer)
        resolve(false)
      }
      if (signal?.aborted) abort()
      signal?.addEventListener('abort', abort, { once: true, signal: stop.signal })
      stop.signal.addEventListener('abort', () => clearTimeout(timer), { once: true })
    })
    try {
      return await Promise.race([until.then(() => true), limit])
    } finally {
      stop.abort()
    }
  }
  const idle = async (): Promise<void> => {
    while (fetching || results.busy()) await new Promise((r) => setTimeout(r, 20))
  }

  return {
    workerId,
    runningCount: () => running.size,
    async drain(graceMs, drainOptions = {}) {
      const { urgent } = drainOptions
      draining = true
      clearTimeout(pollTimer)
      // A fetch under way may still claim attempts: they belong to this drain too.
      await settlesWithin(
        (async () => {
          while (fetching) await new Promise((r) => setTimeout(r, 20))
        })(),
        5000,
      )
      log.info({ worker: workerId, running: running.size, graceMs }, 'draining')
      const all = Promise.all([...running.values()].map((r) => r.done))
      let handedBack = 0
      if (!(await settlesWithin(all, graceMs, urgent))) {
        handedBack = running.size
        drainOptions.onHandBack?.(handedBack)
        for (const entry of running.values()) entry.controller.abort(taskAbort('shutdown', 'worker shutting down; handing the attempt back'))
        // Stopping a task takes at most killGraceMs (SIGTERM, then SIGKILL to its process group).
        if (!(await settlesWithin(all, killGraceMs + 5000))) log.warn({ running: running.size }, 'attempts did not end after being stopped')
      }
      // Results (and log lines) wait for the database for a while, less once told to stop now.
      const done = Promise.all([all, idle()])
      let recorded = await settlesWithin(done, drainOptions.recordMs ?? 15_000, urgent)
      if (!recorded && urgent?.aborted) recorded = await settlesWithin(done, 5000)
      const lost = results.unrecorded.size + running.size
      if (!recorded) {
        log.error({ results: lost }, 'the database is unreachable: giving up on results not yet recorded (their attempts will be declared lost and run again)')
        giveUp.abort()
        writes.abandon()
      }
      clearInterval(heartbeatTimer)
      clearInterval(orphanTimer)
      await settlesWithin(Promise.all([stoppingOrphans, ...sweepers.map((sweeper) => sweeper.stop())]), 5000)
      await settlesWithin(Promise.all([unlistenCancel(), unlistenJobs()]), 5000)
      await settlesWithin(db.query(`UPDATE cairn.worker SET state = 'stopped', stopped_at = $2 WHERE worker_id = $1`, [workerId, now()]).catch(() => undefined), 5000)
      log.info({ worker: workerId }, 'worker stopped')
      return { handedBack, unrecorded: recorded ? 0 : lost }
    },
  }
}
