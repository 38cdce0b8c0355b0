/**
 * One attempt, from claim to outcome: render the task's templates with the run's variables and
 * upstream outputs, decide `when`, run the operator under the attempt's signal and timeout, and
 * store its log lines (secrets masked) as they come.
 */
import type { Logger } from 'pino'
import type { Db } from '../store/db.ts'
import { withReconnect } from '../store/db.ts'
import type { Claim, AttemptOutcome } from '../store/attempts.ts'
import { recordExecutorHandle, recordExecutorState } from '../store/attempts.ts'
import type { AttemptJob } from '../../operators/define.ts'
import type { JobHandle } from '../executors/executor.ts'
import { getDagVersion } from '../store/dags.ts'
import type { LogStream } from '../store/logs.ts'
import { openLogWriter } from './log-writer.ts'
import type { TaskSpec } from '../dag/dag-model.ts'
import { ancestorsOf, taskGraphOf } from '../graph/task-graph.ts'
import { findOperator } from '../../operators/index.ts'
import { abortedResult, notAvailableResult, taskAbort } from '../../operators/define.ts'
import type { OperatorResult } from '../../operators/define.ts'
import { sharedRenderPool } from '../template/render-pool.ts'
import { formatDs, formatDsNodash } from '../time/intervals.ts'
import { isLatestRun } from './latest-run.ts'
import type { SecretStore } from '../secrets/secrets.ts'
import { createMasker } from '../secrets/mask.ts'
import type { Json } from '../dag/yaml-load.ts'
import { prepareAttemptDir } from '../process/attempt-dir.ts'
import type { TaskUser } from '../process/task-user.ts'
import { createOutageBuffer } from './outage-buffer.ts'
import type { DataSettings } from '../config/data-settings.ts'
import { createDataServices } from '../data/data-services.ts'
import type { OutageBuffer } from './outage-buffer.ts'

export interface ExecuteInput {
  db: Db
  claim: Claim
  signal: AbortSignal
  workdir: string
  /** The OS user the task runs as; undefined: the worker's own. */
  user?: TaskUser
  secrets: SecretStore
  workerEnv: Readonly<Record<string, string | undefined>>
  log: Logger
  /** Between SIGTERM and SIGKILL when a task is stopped. @default 10000 */
  killGraceMs?: number
  /** Keeps log lines while the database is away (shared by the worker's attempts). @default one of its own */
  writes?: OutageBuffer
  /** Cap of the attempt's stored log (workers.max_log_bytes). @default 52428800 */
  maxLogBytes?: number
  /** Datasets and connections for the data operators; without it they fail as not configured. */
  data?: DataSettings
  /** The clock `run.is_latest` is read on (the worker's). @default the system clock */
  now?: () => Date
}

export async function executeAttempt(input: ExecuteInput): Promise<{ task: TaskSpec; outcome: AttemptOutcome }> {
  const { db, claim } = input
  // Claimed a moment ago: a database that went away since is waited for (it comes back, or the attempt is declared lost).
  const spec = await withReconnect(() => getDagVersion(db, claim.versionId), { log: input.log, maxWaitMs: 60_000, signal: input.signal })
  const task = spec.tasks.find((t) => t.id === claim.taskId)
  if (!task) throw new Error(`task ${claim.taskId} is not in version ${claim.versionId} of ${claim.dagId}`)
  const at = { runId: claim.runId, taskId: claim.taskId, attempt: claim.attempt }

  let mask = createMasker([])
  const sink = createLogSink(db, at, () => mask, input.log, input.writes ?? createOutageBuffer({ log: input.log }), input.maxLogBytes)

  try {
    // Upstream outputs are read only when a template can refer to them.
    const tasks: Record<string, { outputs: Record<string, unknown> }> = {}
    if (/\btasks\b/.test(JSON.stringify([task.params, task.env, task.when ?? null]))) {
      const outputs = await db.query<{ task_id: string; outputs: Record<string, unknown> | null }>(
        `SELECT task_id, outputs FROM cairn.task_instance WHERE run_id = $1 AND task_id = ANY($2::text[])`,
        [claim.runId, [...ancestorsOf(taskGraphOf(spec.tasks), task.id)]],
      )
      for (const row of outputs.rows) tasks[row.task_id] = { outputs: row.outputs ?? {} }
    }
    const variables = {
      dag: { id: claim.dagId },
      run: {
        id: claim.runId,
        logical_date: claim.logicalDate.toISOString(),
        data_interval_start: claim.dataIntervalStart.toISOString(),
        data_interval_end: claim.dataIntervalEnd.toISOString(),
        is_latest: isLatestRun(spec, claim, input.now?.() ?? new Date()),
      },
      task: { id: task.id, attempt: claim.attempt },
      ds: formatDs(claim.logicalDate, spec.timezone),
      ds_nodash: formatDsNodash(claim.logicalDate, spec.timezone),
      params: claim.runParams,
      tasks,
      secrets: input.secrets,
    }
    const params = task.params !== null && typeof task.params === 'object' && !Array.isArray(task.params) ? task.params : {}
    const operator = findOperator(task.operator)
    // Params an operator takes literally (shell `script`) are never rendered: values reach scripts through env only.
    const literalParams = operator?.literalParams
    // The validator's operator checks again, on the version as stored: it may predate a check.
    const refused = operator?.checkParams?.((task.params ?? null) as Json) ?? []
    if (refused.length > 0) return { task, outcome: { kind: 'failed', failure: 'invalid_params', retryable: false, message: refused.map((p) => `params.${p.path.join('.')}: ${p.message}`).join('; ') } }
    // Off the event loop, within one budget per task: heartbeats and /healthz keep answering.
    const rendered = await sharedRenderPool().render({ params, env: task.env, ...(task.when !== undefined ? { when: task.when } : {}), ...(literalParams ? { literalParams } : {}) }, variables)
    mask = createMasker(rendered.secretValues)
    if (!rendered.ok) return { task, outcome: { kind: 'failed', failure: 'invalid_params', retryable: false, message: mask(rendered.message) } }
    if (!rendered.when) {
      sink.write('log', `skipped: when (${String(task.when)}) rendered falsy`)
      return { task, outcome: { kind: 'skipped', reason: 'when rendered falsy' } }
    }

    if (!operator?.run) return { task, outcome: toOutcome(notAvailableResult(task.operator)) }
    const run = operator.run
    const controller = new AbortController()
    // A re-attached attempt's timeout counts from its first start, not from this worker's claim.
    const timeoutLeft = task.timeoutMs === undefined ? undefined : claim.executorHandle === null ? task.timeoutMs : Math.max(0, task.timeoutMs - (Date.now() - claim.startedAt.getTime()))
    const timeout = timeoutLeft !== undefined ? setTimeout(() => controller.abort(taskAbort('timeout', `timed out after ${task.timeoutMs} ms`)), timeoutLeft) : undefined
    const forward = (): void => controller.abort(input.signal.reason)
    if (input.signal.aborted) forward()
    else input.signal.addEventListener('abort', forward, { once: true })
    const runOperator = async (): Promise<OperatorResult> => {
      // Preparing the folder is part of the attempt: cancel and timeout end it too.
      if (operator.usesWorkdir !== false) {
        // A re-attached attempt keeps its folder: the job it follows may be writing into it.
        const prepared = await prepareAttemptDir(input.workdir, input.user, controller.signal, { keep: claim.executorHandle !== null })
        if (!prepared.ok) return prepared.aborted ? abortedResult(controller.signal) : { ok: false, kind: 'infrastructure', retryable: true, message: prepared.message }
      }
      return run.call(operator, rendered.params as Record<string, unknown>, {
        dagId: claim.dagId,
        runId: claim.runId,
        taskId: task.id,
        attempt: claim.attempt,
        interval: { start: claim.dataIntervalStart, end: claim.dataIntervalEnd, logicalDate: claim.logicalDate },
        ...(input.data ? { data: createDataServices(db, input.data, { dagId: claim.dagId, runId: claim.runId, taskId: task.id, attempt: claim.attempt, claimId: claim.claimId }, input.workerEnv) } : {}),
        executor: attemptJob(db, claim, input.log),
        signal: controller.signal,
        env: rendered.env,
        workerEnv: input.workerEnv,
        workdir: input.workdir,
        ...(input.user ? { user: input.user } : {}),
        killGraceMs: input.killGraceMs ?? 10_000,
        log: {
          info: (message, fields) => void sink.write('log', fields ? `${message} ${JSON.stringify(fields)}` : message),
          warn: (message, fields) => void sink.write('log', `WARN ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`),
          error: (message, fields) => void sink.write('log', `ERROR ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`),
        },
        output: (stream, line) => sink.write(stream, line),
      })
    }
    let result: OperatorResult
    try {
      result = await runOperator()
    } catch (error) {
      result = { ok: false, kind: 'infrastructure', retryable: true, message: `operator ${task.operator} threw: ${error instanceof Error ? error.message : String(error)}` }
    } finally {
      clearTimeout(timeout)
      input.signal.removeEventListener('abort', forward)
    }
    if (!result.ok) sink.write('log', `failed (${result.kind}${result.retryable ? ', retryable' : ''}): ${result.message}`)
    const outcome = toOutcome(result)
    if (outcome.kind === 'success') outcome.outputs = mask.deep(outcome.outputs)
    if (outcome.kind === 'failed') {
      outcome.message = mask(outcome.message)
      if (outcome.outputs) outcome.outputs = mask.deep(outcome.outputs)
    }
    return { task, outcome }
  } finally {
    await sink.close()
  }
}

/** The attempt's job handle and state, written fenced by the claim (see recordExecutorHandle). */
function attemptJob(db: Db, claim: Claim, log: Logger): AttemptJob {
  return {
    handle: (claim.executorHandle ?? undefined) as JobHandle | undefined,
    async recordHandle(handle) {
      const recorded = await withReconnect(() => recordExecutorHandle(db, claim.claimId, handle as unknown as Record<string, unknown>), { log, maxWaitMs: 30_000 })
      if (!recorded) throw new Error('the attempt no longer holds its claim (cancelled, timed out or declared lost) or already names another job')
    },
    async recordState(state) {
      await recordExecutorState(db, claim.claimId, { ...state, updated_at: new Date().toISOString() }).catch((error: unknown) => log.warn({ error: String(error), run: claim.runId, task: claim.taskId }, 'could not record the job state'))
    },
  }
}

function toOutcome(result: OperatorResult): AttemptOutcome {
  if (result.ok) return { kind: 'success', outputs: result.outputs }
  const exitCode = typeof result.outputs?.exit_code === 'number' ? result.outputs.exit_code : null
  return { kind: 'failed', failure: result.kind, retryable: result.retryable, message: result.message, exitCode, ...(result.outputs ? { outputs: result.outputs } : {}) }
}

/** The attempt's log writer (chunks, cap, back-pressure, outages: see log-writer.ts), masking secrets on the way in. */
function createLogSink(db: Db, at: { runId: string; taskId: string; attempt: number }, masker: () => (text: string) => string, log: Logger, writes: OutageBuffer, maxBytes: number | undefined) {
  const writer = openLogWriter(db, at, { log, writes, ...(maxBytes !== undefined ? { maxBytes } : {}) })
  return {
    write: (stream: LogStream, line: string): Promise<void> | undefined => writer.write(stream, masker()(line)),
    close: () => writer.close(),
  }
}
