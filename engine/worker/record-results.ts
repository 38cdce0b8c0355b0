/**
 * Records the results of attempts that have ended, in batches: results that arrive while a batch is
 * being written wait and go together in the next transaction, with one advance per run, so that many
 * short tasks cost few round trips. A result's pg-boss job is completed once the result is recorded.
 *
 * The attempts' work is done, so their results must not be lost: while the database is away a batch
 * waits for it (the transaction is idempotent: fenced by claim ids) until it is back or a stop gives
 * up on it. Claims whose results wait are listed in `unrecorded`, so the worker keeps heartbeating
 * them and the scheduler never declares a finished attempt lost because its result was late.
 */
import type { Logger } from 'pino'
import type { PgBoss } from 'pg-boss'
import type { Db } from '../store/db.ts'
import { withReconnect } from '../store/db.ts'
import { enqueueJobs } from '../queue/task-queue.ts'
import { finishAttempt, finishSuccesses } from '../store/attempts.ts'
import type { AttemptOutcome, Claim } from '../store/attempts.ts'
import { TransitionRefused } from '../store/transitions.ts'
import { advanceAfterTasks } from '../store/advance.ts'
import type { AdvanceContext } from '../store/advance.ts'
import type { TaskSpec } from '../dag/dag-model.ts'

/** A pg-boss job: its id and the pg-boss queue it came from. */
export interface JobRef {
  id: string
  queue: string
}

/** An attempt that has ended, with the result to record. */
export interface FinishedAttempt {
  claim: Claim
  job: JobRef
  task: TaskSpec
  outcome: AttemptOutcome
}

export interface ResultRecorderOptions {
  db: Db
  boss: PgBoss
  log: Logger
  now: () => Date
  /** Aborted when a stop gives up on results that wait for the database. */
  giveUp: AbortSignal
  /** Called after each batch, recorded or not (the worker looks for work again). */
  afterBatch(): void
}

export interface ResultRecorder {
  /** Records `finished` with the next batch; resolves once that batch is recorded or given up on. */
  record(finished: FinishedAttempt): Promise<void>
  /** Claims of attempts that have ended and whose results wait to be recorded. */
  readonly unrecorded: ReadonlySet<string>
  /** True while a batch is being written or results wait for the next one. */
  busy(): boolean
}

interface Pending extends FinishedAttempt {
  recorded: () => void
}

export function createResultRecorder(options: ResultRecorderOptions): ResultRecorder {
  const { db, boss, log, now, giveUp } = options
  const ctx: AdvanceContext = { boss, now }
  const unrecorded = new Set<string>()
  let pending: Pending[] = []
  let flushing: Promise<void> | undefined

  const flush = (): void => {
    if (flushing || pending.length === 0) return
    const batch = pending
    pending = []
    flushing = record(batch)
      .catch((error: unknown) => log.error({ err: error }, 'could not record attempt results'))
      .finally(() => {
        flushing = undefined
        for (const f of batch) {
          unrecorded.delete(f.claim.claimId)
          f.recorded()
        }
        flush()
        options.afterBatch()
      })
  }

  /**
   * The attempts' work is done, so their results must not be lost: while the database is away the
   * transaction is retried until it is back (it is idempotent: fenced by claim ids), or until a stop
   * gives up on it.
   */
  const record = async (batch: Pending[]): Promise<void> => {
    let jobs: JobRef[]
    try {
      jobs = await recordTogether(batch)
    } catch (error) {
      // The state machine refused one result (its task instance was moved by something else): that
      // one is reported, the others of the batch must not be lost with it.
      if (!(error instanceof TransitionRefused) || batch.length === 1) throw error
      jobs = []
      for (const f of batch) {
        jobs.push(
          ...(await recordTogether([f]).catch((one: unknown) => {
            if (!(one instanceof TransitionRefused)) throw one
            log.error({ run: f.claim.runId, task: f.claim.taskId, attempt: f.claim.attempt, error: one.message }, 'attempt result refused by the state machine')
            return []
          })),
        )
      }
    }
    // Only pg-boss's bookkeeping: the attempt's result is already recorded, so nothing waits for it.
    void completeJobs(boss, jobs).catch((error: unknown) => log.warn({ error: String(error) }, 'could not complete queue jobs'))
  }

  const recordTogether = async (batch: Pending[]): Promise<JobRef[]> =>
    withReconnect(
      () =>
        db.tx(async (q) => {
          const successes = batch.filter((f) => f.outcome.kind === 'success')
          const saved = await finishSuccesses(q, successes.map((f) => ({ claimId: f.claim.claimId, outputs: (f.outcome as { outputs: Record<string, unknown> }).outputs })), now())
          const ended = new Map<string, string[]>()
          for (const at of saved) ended.set(at.runId, [...(ended.get(at.runId) ?? []), at.taskId])
          for (const f of batch) {
            if (f.outcome.kind === 'success') continue
            const at = await finishAttempt(q, f.claim.claimId, f.task, f.outcome, now())
            if (!at) {
              log.warn({ run: f.claim.runId, task: f.claim.taskId, attempt: f.claim.attempt }, 'attempt result refused: the attempt was cancelled or declared lost meanwhile')
              continue
            }
            if (f.outcome.kind === 'handed_back') await enqueueJobs(boss, q, [{ runId: at.runId, taskId: at.taskId, attempt: at.attempt, priority: f.task.priority, queue: f.task.queue }])
            else ended.set(at.runId, [...(ended.get(at.runId) ?? []), at.taskId])
          }
          for (const [runId, taskIds] of ended) await advanceAfterTasks(q, ctx, runId, taskIds)
          return batch.map((f) => f.job)
        }),
      { log, maxWaitMs: Number.POSITIVE_INFINITY, signal: giveUp },
    )

  return {
    record(finished) {
      unrecorded.add(finished.claim.claimId)
      return new Promise<void>((recorded) => {
        pending.push({ ...finished, recorded })
        flush()
      })
    },
    unrecorded,
    busy: () => flushing !== undefined || pending.length > 0,
  }
}

/** Completes pg-boss jobs, on the queue each came from. */
export async function completeJobs(boss: PgBoss, jobs: readonly JobRef[]): Promise<void> {
  const byQueue = new Map<string, string[]>()
  for (const job of jobs) {
    const ids = byQueue.get(job.queue)
    if (ids) ids.push(job.id)
    else byQueue.set(job.queue, [job.id])
  }
  for (const [queue, ids] of byQueue) await boss.complete(queue, ids)
}
