/**
 * The `train` operator's run: builds a JobSpec (the built-in trainer's argv or the task's `command`),
 * picks the executor for `executor:` from the registry in engine/executors/index.ts (it never
 * branches on the kind here), streams every rank's lines into the task log labelled with the rank,
 * stops the job on cancel or timeout, then reads metrics.json and registers model.onnx when
 * `model_name` is set.
 *
 * Outputs: `model_uri` (models:/NAME/VERSION when registered, else the path of model.onnx among the
 * collected artifacts), `metrics` (metrics.json of rank 0), `model_version`, and `job_id` when the
 * executor has one (Slurm). A failed job keeps its handle in the outputs (`job`).
 */
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { executorFor } from '../../engine/executors/index.ts'
import type { JobHandle, JobProgress, JobSpec, RankLine, RunningJob } from '../../engine/executors/executor.ts'
import { abortedResult } from '../define.ts'
import type { OperatorContext, OperatorResult } from '../define.ts'
import { childEnvironment } from '../shell.ts'

export type TrainerParams = {
  dataset: string
  label: string
  features?: string[]
  task: 'binary' | 'multiclass' | 'regression'
  model: { kind: 'mlp' | 'logistic'; hidden?: number[] }
  epochs: number
  batch_size: number
  learning_rate: number
  seed?: number
}

export type TrainParams = {
  executor: string
  cluster?: string
  nodes: number
  tasks_per_node?: number
  gpus_per_node?: number
  trainer?: TrainerParams
  command?: string[]
  workdir?: string
  artifacts?: string[]
  slurm?: JobSpec['slurm']
  model_name?: string
}

/** The folder of the attempt the ranks run in when `workdir` is not given. */
const DEFAULT_WORKDIR = 'train'
const CAIRN_TRAIN = fileURLToPath(new URL('../../bin/cairn-train.js', import.meta.url))
const TRAINER_ARTIFACTS = ['model.onnx', 'metrics.json']
const MAX_METRICS_BYTES = 4 * 1024 * 1024
/** cairn-train's exit code for bad arguments or bad data (engine/train/main.ts). */
const TRAINER_BAD_INPUT = 2

/**
 * Re-attach: a job that can outlive its worker (Slurm, SSH) has its handle stored with the attempt
 * (ctx.executor.recordHandle, fenced by the claim) before it may run; a worker that takes over an
 * attempt whose handle is stored follows that job (`reattach`) and never starts a second one. A
 * draining worker leaves such a job running; cancel and timeout stop it.
 */
export async function runTrain(params: TrainParams, ctx: OperatorContext): Promise<OperatorResult> {
  if (ctx.signal.aborted) return abortedResult(ctx.signal)
  if ((params.trainer === undefined) === (params.command === undefined)) return { ok: false, kind: 'invalid_params', retryable: false, message: 'give exactly one of `trainer` or `command`' }

  const executor = executorFor(params.executor, {
    ...(ctx.user ? { user: ctx.user } : {}),
    ...(ctx.killGraceMs === undefined ? {} : { killGraceMs: ctx.killGraceMs }),
    ...(params.cluster === undefined ? {} : { cluster: params.cluster }),
    ...(ctx.data ? { clusters: ctx.data.clusters, sshHosts: ctx.data.sshHosts } : {}),
    // Only when the handle is stored with the attempt can another worker take the job over.
    ...(ctx.executor ? { keepJobsOnShutdown: true } : {}),
  })
  if ('error' in executor) return { ok: false, kind: 'infrastructure', retryable: false, message: executor.error }
  const attemptJob = ctx.executor
  const earlier = attemptJob?.handle
  if (earlier !== undefined && earlier.executor !== executor.kind) {
    return { ok: false, kind: 'infrastructure', retryable: false, message: `this attempt's job was started on executor ${earlier.executor}, but the task now names ${executor.kind}; it is not started a second time`, outputs: { job: earlier } }
  }

  // The ranks' folder: for local ranks a folder inside the attempt's own (the task user's).
  const { createWorkdir, checkWorkdir } = await import('../../engine/process/attempt-dir.ts')
  let workdir: string
  if (params.workdir !== undefined && path.isAbsolute(params.workdir)) {
    workdir = params.workdir
  } else if (executor.workRoot !== undefined) {
    // Ranks away from the worker: a folder of this attempt under the cluster's work root (the executor creates it on the nodes).
    const checked = checkWorkdir(params.workdir ?? '.')
    if (!checked.ok) return { ok: false, kind: 'invalid_params', retryable: false, message: checked.message }
    workdir = path.posix.join(executor.workRoot, ctx.runId, ctx.taskId, String(ctx.attempt), checked.relative)
  } else {
    const checked = checkWorkdir(params.workdir ?? DEFAULT_WORKDIR)
    if (!checked.ok) return { ok: false, kind: 'invalid_params', retryable: false, message: checked.message }
    const made = await createWorkdir(ctx.workdir, checked.relative, ctx.user, ctx.signal)
    if (!made.ok) return made.aborted ? abortedResult(ctx.signal) : { ok: false, kind: 'infrastructure', retryable: false, message: made.message }
    workdir = made.value
  }

  let argv: string[]
  let dataset: { name: string; version: number; inputs: readonly unknown[] } | undefined
  if (params.trainer) {
    const data = ctx.data
    if (!data) return { ok: false, kind: 'infrastructure', retryable: false, message: 'the built-in trainer needs the datasets, which this worker was started without' }
    const found = await data.datasets.resolve(params.trainer.dataset)
    if (!found) return { ok: false, kind: 'invalid_params', retryable: false, message: `dataset ${JSON.stringify(params.trainer.dataset)} has no version` }
    if (found.files.length === 0) return { ok: false, kind: 'data_invalid', retryable: false, message: `dataset ${found.dataset} version ${found.version} has no Parquet file` }
    dataset = { name: found.dataset, version: found.version, inputs: found.inputs }
    if (ctx.user) {
      const { grantTaskRead } = await import('./dataset-access.ts')
      const changed = await grantTaskRead(data.datasets.dir, found.files)
      if (changed.length > 0) ctx.log.info('made the dataset files readable by the task user', { paths: changed.length })
    }
    argv = trainerArgv(params.trainer, found.files, workdir)
    ctx.log.info('training with the built-in trainer', { dataset: `${found.dataset}@${found.version}`, files: found.files.length })
  } else {
    argv = params.command!
  }

  const identity = ctx.user ? { HOME: ctx.workdir, USER: ctx.user.name, LOGNAME: ctx.user.name } : {}
  // Remote ranks get the task's env and cairn's variables, never the worker's own environment.
  const env = childEnvironment(executor.workRoot === undefined ? { ...ctx.workerEnv, ...identity } : {}, ctx.env, {
    CAIRN_DAG_ID: ctx.dagId,
    CAIRN_RUN_ID: ctx.runId,
    CAIRN_TASK_ID: ctx.taskId,
    CAIRN_ATTEMPT: String(ctx.attempt),
  })
  const artifactsDir = ctx.data?.artifactsDir ?? path.join(ctx.workdir, 'artifacts')
  const artifacts = params.artifacts ?? (params.trainer ? TRAINER_ARTIFACTS : [])
  const spec: JobSpec = {
    argv,
    env,
    nodes: params.nodes,
    tasksPerNode: params.tasks_per_node ?? 1,
    gpusPerNode: params.gpus_per_node ?? 0,
    workdir,
    artifacts,
    artifactsDir,
    ...(params.slurm ? { slurm: params.slurm } : {}),
  }
  const worldSize = spec.nodes * spec.tasksPerNode
  // What the attempt's page shows of the job, merged from the executor's reports.
  let shown: { job_id?: string; state?: string; ranks: { rank: number; host: string }[] } = { ranks: [] }
  let jobId: string | undefined
  // Written one after the other: two writes in flight at once could land in either order, leaving an
  // earlier state (RUNNING) over the final one.
  let stateWrites: Promise<void> = Promise.resolve()
  const onProgress = (progress: JobProgress): void => {
    shown = { ...shown, ...(jobId !== undefined ? { job_id: jobId } : {}), ...(progress.state !== undefined ? { state: progress.state } : {}), ...(progress.ranks !== undefined ? { ranks: progress.ranks } : {}) }
    const state = { executor: executor.kind, ...shown }
    if (attemptJob !== undefined) stateWrites = stateWrites.then(() => attemptJob.recordState(state)).catch(() => undefined)
  }
  // Where each rank runs (a Slurm node, an SSH host), said once per rank as soon as the executor knows it.
  const placed = new Set<number>()
  const onLine = (l: RankLine): unknown => {
    if (l.host !== undefined && l.rank >= 0 && !placed.has(l.rank)) {
      placed.add(l.rank)
      ctx.log.info(`rank ${l.rank} runs on ${l.host}`, { rank: l.rank, host: l.host })
    }
    return ctx.output(l.stream, worldSize > 1 ? `[rank ${l.rank}] ${l.line}` : l.line)
  }
  // Stored before the job may run; a refusal (the attempt was cancelled meanwhile) keeps it from running.
  // A Slurm handle without an id (jobId '') is the name of a job about to be submitted.
  const record = async (handle: JobHandle): Promise<void> => {
    const submitting = handle.executor === 'slurm' && handle.jobId === ''
    ctx.log.info(submitting ? 'submitting the training job' : 'training job started', { job: handle })
    if (!submitting) jobId = handle.executor === 'slurm' ? handle.jobId : undefined
    if (executor.outlivesWorker && attemptJob) await attemptJob.recordHandle(handle)
  }
  let job: RunningJob
  if (earlier !== undefined) {
    // An earlier worker started this attempt's job (and died or drained): follow it, never start another.
    ctx.log.info('re-attaching to the job this attempt started earlier', { job: earlier })
    jobId = earlier.executor === 'slurm' && earlier.jobId !== '' ? earlier.jobId : undefined
    job = await executor.reattach(earlier, { onLine, onProgress, signal: ctx.signal, spec, record })
  } else {
    job = await executor.start(spec, { onLine, onProgress, record, signal: ctx.signal })
  }
  const stop = (): void => {
    const cause = (ctx.signal.reason as { cause?: string } | undefined)?.cause
    // A worker shutting down: the executor itself leaves the job running for the next worker (or stops it).
    if (cause === 'shutdown') return
    void job.cancel(cause === 'timeout' ? 'timeout' : 'cancelled')
  }
  ctx.signal.addEventListener('abort', stop, { once: true })
  const outcome = await job.done
  // The job's last state is stored before the attempt ends.
  await stateWrites
  await executor.close?.().catch(() => undefined)
  ctx.signal.removeEventListener('abort', stop)
  const jobOutputs: Record<string, unknown> = { job: job.handle, ...(job.handle.executor === 'slurm' ? { job_id: job.handle.jobId } : {}) }
  if (ctx.signal.aborted) return abortedResult(ctx.signal, jobOutputs)
  if (!outcome.ok) {
    // cairn-train exits 2 for bad arguments or bad data: the same data would fail the same way.
    const badData = params.trainer !== undefined && outcome.kind === 'exit_code' && outcome.exitCode === TRAINER_BAD_INPUT
    return {
      ok: false,
      kind: badData ? 'data_invalid' : outcome.kind,
      retryable: badData ? false : outcome.retryable,
      message: badData ? `the trainer refused its input (${outcome.message}); the task log has its reason` : outcome.message,
      outputs: { ...jobOutputs, ...(outcome.exitCode === undefined ? {} : { exit_code: outcome.exitCode }) },
    }
  }

  const outputs: Record<string, unknown> = job.handle.executor === 'slurm' ? { job_id: job.handle.jobId } : {}
  const modelFile = path.join(artifactsDir, 'model.onnx')
  const hasModel = (await stat(modelFile).catch(() => undefined))?.isFile() === true
  const metricsFile = path.join(artifactsDir, 'metrics.json')
  let metrics: Record<string, unknown> | undefined
  if ((await stat(metricsFile).catch(() => undefined))?.isFile()) {
    const size = (await stat(metricsFile)).size
    if (size > MAX_METRICS_BYTES) return { ok: false, kind: 'exit_code', retryable: false, message: `metrics.json is larger than ${MAX_METRICS_BYTES} bytes`, outputs: jobOutputs }
    try {
      const parsed: unknown = JSON.parse(await readFile(metricsFile, 'utf8'))
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object')
      metrics = parsed as Record<string, unknown>
    } catch (error) {
      return { ok: false, kind: 'exit_code', retryable: false, message: `metrics.json is not a JSON object: ${(error as Error).message}`, outputs: jobOutputs }
    }
    // The per-epoch history stays in the artifact; outputs carry the summary.
    const { history: _history, ...summary } = metrics
    outputs.metrics = summary
  }
  if (hasModel) outputs.model_uri = modelFile

  if (params.model_name !== undefined) {
    if (!hasModel) return { ok: false, kind: 'exit_code', retryable: false, message: 'model_name is set but the job wrote no model.onnx (list it in `artifacts`)', outputs: jobOutputs }
    if (!ctx.data) return { ok: false, kind: 'infrastructure', retryable: false, message: 'registering a model needs the model registry, which this worker was started without' }
    const features = Array.isArray(metrics?.features) ? (metrics.features as unknown[]).filter((f): f is string => typeof f === 'string') : params.trainer?.features ?? []
    let registered: Awaited<ReturnType<typeof ctx.data.models.register>>
    try {
      registered = await ctx.data.models.register({
        name: params.model_name,
        file: modelFile,
        ...(metrics ? { metrics: outputs.metrics as Record<string, unknown> } : {}),
        features,
        ...(params.trainer ? { taskKind: params.trainer.task } : typeof metrics?.task === 'string' ? { taskKind: metrics.task } : {}),
        ...(dataset ? { dataset } : {}),
      })
    } catch (error) {
      if (ctx.signal.aborted) return abortedResult(ctx.signal, outputs)
      return { ok: false, kind: 'infrastructure', retryable: true, message: `the model could not be registered: ${error instanceof Error ? error.message : String(error)}`, outputs }
    }
    const { version, reused } = registered
    ctx.log.info(reused ? 'model version already registered by this task' : 'registered model version', { model: params.model_name, version: version.version, sha256: version.sha256 })
    outputs.model_uri = version.uri
    outputs.model_version = version.version
  }
  return { ok: true, outputs }
}

/** `cairn-train` argv for the built-in trainer (run with the worker's own Node on every rank). */
export function trainerArgv(t: TrainerParams, files: readonly string[], output: string): string[] {
  return [
    process.execPath,
    CAIRN_TRAIN,
    ...files.flatMap((f) => ['--data', f]),
    '--label', t.label,
    '--task', t.task,
    '--model', t.model.kind,
    ...(t.model.hidden ? ['--hidden', t.model.hidden.join(',')] : []),
    ...(t.features ? ['--features', t.features.join(',')] : []),
    '--epochs', String(t.epochs),
    '--batch-size', String(t.batch_size),
    '--learning-rate', String(t.learning_rate),
    ...(t.seed === undefined ? [] : ['--seed', String(t.seed)]),
    '--output', output,
  ]
}
