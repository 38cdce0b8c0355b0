/**
 * What an operator is: a type name, the JSON Schema of its params (also published under
 * schemas/operators/), and the function that does the work. The registry in index.ts is the only
 * place operators are listed; an unknown `operator:` is a validation error, not a runtime surprise.
 *
 * Terminology for the run-time half:
 *   attempt   one try at a task instance; each gets a fresh `workdir` and its own AbortSignal.
 *   outputs   the JSON object an operator publishes; downstream templates read it as
 *             `tasks.T.outputs.KEY`.
 *   failure   a result with `ok: false`; its `kind` keeps apart the task's own failure (a non-zero
 *             exit, a gate not met) from infrastructure trouble, and `retryable` says whether the
 *             task's `retries` apply at all.
 */

/**
 * Why an attempt failed:
 * - `exit_code`: the program itself failed (non-zero exit, killed by a signal it did not get from
 *   cairn, an unreadable $CAIRN_OUTPUTS file). Argo's `Failed`.
 * - `timeout`: the task's `timeout` elapsed and cairn stopped it.
 * - `cancelled`: a user cancelled the run or cleared the task.
 * - `gate_not_met`: an evaluation gate refused the model (never retried).
 * - `infrastructure`: the worker could not run the task (program missing, worker shutting down,
 *   operator not available). Argo's `Error`.
 * - `invalid_params`: params that passed validation but make no sense once rendered.
 * - `data_invalid`: the task's input data broke its own rules (bad rows, failed expectations, a
 *   response over its size limit); the same data would fail the same way.
 * - `lost`: the worker running the attempt vanished (found by the scheduler, not by operators).
 */
import type { ErrorCode } from '../engine/errors.ts'
import type { Json, PathSegment } from '../engine/dag/yaml-load.ts'
import type { TaskUser } from '../engine/process/task-user.ts'
import type { DataServices } from '../engine/data/data-services.ts'
import type { JobHandle } from '../engine/executors/executor.ts'

export type FailureKind = 'exit_code' | 'timeout' | 'cancelled' | 'gate_not_met' | 'infrastructure' | 'invalid_params' | 'data_invalid' | 'lost'

export type OperatorResult =
  | { ok: true; outputs: Record<string, unknown> }
  | { ok: false; kind: FailureKind; retryable: boolean; message: string; outputs?: Record<string, unknown> }

export interface OperatorLogger {
  info(message: string, fields?: Record<string, unknown>): void
  warn(message: string, fields?: Record<string, unknown>): void
  error(message: string, fields?: Record<string, unknown>): void
}

/**
 * Why the worker aborted an attempt. The worker calls `controller.abort(taskAbort(...))`; operators
 * read it back with `abortCause(ctx.signal)`.
 * - `cancelled`: run cancelled or task cleared by a user.
 * - `timeout`: the task's `timeout` elapsed.
 * - `shutdown`: the worker is draining and its grace period ran out.
 */
export type AbortCause = 'cancelled' | 'timeout' | 'shutdown'

export interface TaskAbortReason {
  cause: AbortCause
  message: string
}

export function taskAbort(cause: AbortCause, message: string): TaskAbortReason {
  return { cause, message }
}

/** The cause behind an aborted signal; an abort without a cairn reason counts as a cancel. */
function abortCause(signal: AbortSignal): AbortCause {
  const reason: unknown = signal.reason
  if (isTaskAbortReason(reason)) return reason.cause
  if (reason instanceof Error && reason.name === 'TimeoutError') return 'timeout'
  return 'cancelled'
}

/** The failure an operator reports when its signal was aborted (shared so every operator agrees). */
export function abortedResult(signal: AbortSignal, outputs?: Record<string, unknown>): OperatorResult & { ok: false } {
  const reason: unknown = signal.reason
  const detail = isTaskAbortReason(reason) ? reason.message : undefined
  const cause = abortCause(signal)
  const base = outputs === undefined ? {} : { outputs }
  switch (cause) {
    case 'timeout':
      return { ...base, ok: false, kind: 'timeout', retryable: true, message: detail ?? 'the task exceeded its timeout and was stopped' }
    case 'shutdown':
      return { ...base, ok: false, kind: 'infrastructure', retryable: true, message: detail ?? 'the worker shut down before the task finished' }
    case 'cancelled':
      return { ...base, ok: false, kind: 'cancelled', retryable: false, message: detail ?? 'the task was cancelled' }
  }
}

function isTaskAbortReason(value: unknown): value is TaskAbortReason {
  if (value === null || typeof value !== 'object') return false
  const cause = (value as { cause?: unknown }).cause
  return (cause === 'cancelled' || cause === 'timeout' || cause === 'shutdown') && typeof (value as { message?: unknown }).message === 'string'
}

/**
 * The attempt's job on an executor (`train`), kept durably with the attempt so that a job outlives
 * its worker: another worker that claims the attempt re-attaches to it instead of starting a second
 * one (one job per attempt, ever).
 */
export interface AttemptJob {
  /** The job an earlier holder of this attempt started (it died or drained): re-attach to it, never start another. */
  readonly handle: JobHandle | undefined
  /**
   * Stores the handle with the attempt before the job may run. Rejects when the attempt no longer
   * holds its claim (cancelled, timed out, declared lost) or already names another job: the job must
   * then not run.
   */
  recordHandle(handle: JobHandle): Promise<void>
  /** What the web page shows of the job (job id, executor state, ranks with hosts); best effort. */
  recordState(state: { executor: 'slurm' | 'ssh' | 'local'; job_id?: string; state?: string; ranks: { rank: number; host: string }[] }): Promise<void>
}

/** What an operator gets for one attempt. Everything it may touch is in here; nothing is global. */
export interface OperatorContext {
  dagId: string
  runId: string
  taskId: string
  /** 1 for the first try, 2 for the first retry, ... */
  attempt: number
  /** The run's data interval [start, end) and logical date (SPEC section 2); manual runs: start = end. */
  interval: { start: Date; end: Date; logicalDate: Date }
  /**
   * Datasets, connections, readable folders and artifacts (SPEC section 7). Undefined in a process
   * that was started without them (the data operators then fail with an infrastructure error).
   */
  data?: DataServices
  /** The attempt's executor job (re-attach); undefined where nothing durable exists (tests calling an operator directly). */
  executor?: AttemptJob
  /** Aborted on cancel, timeout, or worker drain past its grace; `abortCause(signal)` tells which. */
  signal: AbortSignal
  /** The task's rendered `env`. */
  env: Record<string, string>
  /**
   * The worker's own environment, which child processes inherit (the shell operator removes
   * cairn's own secrets such as DATABASE_URL and CAIRN_SECRET_* from it). Passed in rather than
   * read from process.env so tests and embedded workers control it.
   */
  workerEnv: Readonly<Record<string, string | undefined>>
  /**
   * A fresh, empty directory for this attempt, owned by `user`; it exists when `run` is called.
   * Folders above it are the worker's.
   */
  workdir: string
  /**
   * The OS user the task's processes run as (`workers.run_as`); undefined when they run as the
   * worker's own user. Operators that start processes or create files for the task must use it.
   */
  user?: TaskUser
  /**
   * Time a stopped task's processes get between SIGTERM and SIGKILL.
   * @default 10000
   */
  killGraceMs?: number
  /** The operator's own log lines. The worker masks secret values in everything logged. */
  log: OperatorLogger
  /**
   * One line written by a child process (already split, without its newline). A returned promise
   * means the log writer is full: read no more output until it resolves (back-pressure). Typed
   * `unknown` so that a test's collector (`(s, l) => lines.push(l)`) still fits.
   */
  output(stream: 'stdout' | 'stderr', line: string): unknown
}

export interface OperatorDefinition<P = Record<string, unknown>> {
  /** The `operator:` value in a DAG file, e.g. `shell` or `features.materialize`. */
  type: string
  /** One line for `cairn validate` messages and the docs. */
  summary: string
  paramsSchema: object
  /** Whether a task of this operator may omit `params` entirely. */
  paramsOptional?: boolean
  /** False when the operator never touches its `workdir`, so the worker need not create one. @default true */
  usesWorkdir?: boolean
  /**
   * Top-level params handed to `run` exactly as written, never rendered (shell's `script`: a
   * templated value spliced into shell text could become shell syntax, so values go through env).
   */
  literalParams?: readonly string[]
  /**
   * Checks of the params as written in the DAG (templates not rendered) that JSON Schema cannot
   * express. Run by the validator (each problem reported at `params.<path>`) and again by the worker
   * before rendering, so a DAG version stored before a check existed cannot slip through.
   */
  checkParams?(params: Json): ParamProblem[]
  /**
   * Runs one attempt with the rendered params (already valid against `paramsSchema`). Must honour
   * `ctx.signal` and report failures as results, not exceptions; a throw is treated by the worker
   * as a retryable `infrastructure` failure. Operators without `run` are declared only: DAGs using
   * them validate, and the worker fails their tasks with "operator X is not available in this version".
   */
  run?(params: P, ctx: OperatorContext): Promise<OperatorResult>
}

/** A problem found by an operator's `checkParams`; `path` is relative to the task's `params`. */
export interface ParamProblem {
  code: ErrorCode
  message: string
  path: PathSegment[]
}

export function defineOperator<T extends OperatorDefinition>(definition: T): T {
  return definition
}

/** The worker's failure for a task whose operator has no `run`. */
export function notAvailableResult(type: string): OperatorResult & { ok: false } {
  return { ok: false, kind: 'infrastructure', retryable: false, message: `operator ${type} is not available in this version` }
}

/** The failure of a data operator on a worker started without data services (datasets directory, registry, connections). */
export function noDataServicesResult(): OperatorResult & { ok: false } {
  return { ok: false, kind: 'infrastructure', retryable: false, message: 'this worker was started without the data services (datasets directory, model registry, connections)' }
}
