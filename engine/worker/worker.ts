/**
 * The worker process: takes task attempts from the queue, runs their operators, and reports the
 * results. It never sets a run's state itself; finishing an attempt advances the run through the
 * same decision code the scheduler uses, in the same transaction.
 *
 * Heartbeats keep claims alive and double as the cancel channel: a claim that is no longer held
 * (run cancelled, attempt declared lost) aborts its task. SIGTERM drains: no new work, running
 * tasks get a grace period, then are stopped and handed back to the queue without using a retry.
 */
import { hostname } from 'node:os'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import type { PgBoss } from 'pg-boss'
import type { Db } from '../store/db.ts'
import { TASK_QUEUE, enqueueJobs } from '../queue/task-queue.ts'
import type { TaskJob } from '../queue/task-queue.ts'
import { claimAttempt, finishAttempt, heartbeat } from '../store/attempts.ts'
import type { AttemptOutcome, Claim } from '../store/attempts.ts'
import { advanceRun } from '../store/advance.ts'
import type { AdvanceContext } from '../store/advance.ts'
import { executeAttempt } from './execute-attempt.ts'
import type { SecretStore } from '../secrets/secrets.ts'
import { taskAbort } from '../../operators/define.ts'

export interface WorkerOptions {
  db: Db
  boss: PgBoss
  log: Logger
  /** Attempts run at once. @default 4 */
  slots?: number
  /** Where per-attempt working directories go (under CAIRN_HOME). */
  workRoot: string
  secrets: SecretStore
  /** The environment child processes inherit. */
  workerEnv: Readonly<Record<string, string | undefined>>
  /** @default 2000 */
  heartbeatMs?: number
  now?: () => Date
}

export interface Worker {
  workerId: string
  /** Stops taking work; running attempts get `graceMs`, then are stopped and handed back. */
  drain(graceMs: number): Promise<void>
}

interface Running {
  claim: Claim
  controller: AbortController
  done: Promise<void>
}

export async function startWorker(options: WorkerOptions): Promise<Worker> {
  const { db, boss, log } = options
  const now = options.now ?? (() => new Date())
  const slots = options.slots ?? 4
  const workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
  const ctx: AdvanceContext = { boss, now }
  const running = new Map<string, Running>()
  let draining = false

  await db.query(`INSERT INTO cairn.worker (worker_id, hostname, pid, state, slots) VALUES ($1, $2, $3, 'running', $4)`, [workerId, hostname(), process.pid, slots])

  const beat = async (): Promise<void> => {
    const claims = [...running.keys()]
    const held = await heartbeat(db, claims, now())
    for (const claimId of claims) {
      if (held.has(claimId)) continue
      const entry = running.get(claimId)
      if (entry && !entry.controller.signal.aborted) {
        log.info({ run: entry.claim.runId, task: entry.claim.taskId, attempt: entry.claim.attempt }, 'attempt no longer held (cancelled or lost); stopping it')
        entry.controller.abort(taskAbort('cancelled', 'the run was cancelled or the attempt was taken away'))
      }
    }
    await db.query(`UPDATE cairn.worker SET heartbeat_at = $2, state = $3 WHERE worker_id = $1`, [workerId, now(), draining ? 'draining' : 'running'])
  }
  const heartbeatTimer = setInterval(() => {
    beat().catch((error: unknown) => log.warn({ err: error }, 'heartbeat failed; will retry'))
  }, options.heartbeatMs ?? 2000)
  const unlisten = await db.listen('cairn_cancel', () => {
    beat().catch(() => undefined)
  })

  const handle = async (job: TaskJob): Promise<void> => {
    if (draining) {
      // pg-boss handed us a job after the drain began: give it straight back.
      await db.tx((q) => enqueueJobs(boss, q, [{ ...job, priority: 0 }]))
      return
    }
    const claim = await claimAttempt(db, job, workerId, now())
    if (!claim) return
    const controller = new AbortController()
    let resolveDone!: () => void
    const entry: Running = { claim, controller, done: new Promise((r) => (resolveDone = r)) }
    running.set(claim.claimId, entry)
    try {
      const workdir = join(options.workRoot, claim.runId, claim.taskId, String(claim.attempt))
      mkdirSync(workdir, { recursive: true })
      const { outcome, task } = await executeAttempt({ db, claim, signal: controller.signal, workdir, secrets: options.secrets, workerEnv: options.workerEnv, log })
      const finished = draining && controller.signal.aborted && outcome.kind === 'failed' && outcome.failure === 'infrastructure' ? handBack() : outcome
      const saved = await db.tx(async (q) => {
        const at = await finishAttempt(q, claim.claimId, task, finished, now())
        if (!at) return false
        if (finished.kind === 'handed_back') await enqueueJobs(boss, q, [{ runId: claim.runId, taskId: claim.taskId, attempt: claim.attempt, priority: task.priority }])
        else await advanceRun(q, ctx, claim.runId)
        return true
      })
      if (!saved) log.warn({ run: claim.runId, task: claim.taskId, attempt: claim.attempt }, 'attempt result refused: the attempt was cancelled or declared lost meanwhile')
    } finally {
      running.delete(claim.claimId)
      resolveDone()
    }
  }

  await boss.work<TaskJob>(TASK_QUEUE, { batchSize: 1, localConcurrency: slots, pollingIntervalSeconds: 2 }, async (jobs) => {
    for (const job of jobs) await handle(job.data)
  })
  log.info({ worker: workerId, slots }, 'worker started')

  return {
    workerId,
    async drain(graceMs) {
      draining = true
      log.info({ worker: workerId, running: running.size, graceMs }, 'draining')
      const offWork = boss.offWork(TASK_QUEUE, { wait: false })
      const all = Promise.all([...running.values()].map((r) => r.done))
      const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref())])
      if (timedOut) {
        for (const entry of running.values()) entry.controller.abort(taskAbort('shutdown', 'worker shutting down; handing the attempt back'))
        await all
      }
      await offWork
      clearInterval(heartbeatTimer)
      await unlisten()
      await db.query(`UPDATE cairn.worker SET state = 'stopped', stopped_at = $2 WHERE worker_id = $1`, [workerId, now()])
      log.info({ worker: workerId }, 'worker stopped')
    },
  }
}

function handBack(): AttemptOutcome {
  return { kind: 'handed_back', reason: 'worker drained before the attempt finished' }
}
