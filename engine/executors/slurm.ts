/**
 * The slurm executor: one Slurm job per attempt, submitted held, recorded, then released; ranks started by
 * srun inside the job; followed by the worker's watcher for its cluster (one squeue per interval for all
 * jobs); output tailed from the job's files; cancel and timeout -> scancel, confirmed with scontrol.
 *
 * Abort causes (the signal's reason, as the worker sets it): `cancelled` and `timeout` cancel the job;
 * `shutdown` cancels it too unless `keepJobsOnShutdown` (set it once handles are recorded durably with the
 * attempt, so that another worker re-attaches): then it only stops following and the job keeps running.
 */
import { randomBytes } from 'node:crypto'
import { copyFile, mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { SlurmCluster } from '../config/config-types.ts'
import type { Executor, JobHandle, ReattachOptions, JobOutcome, JobSpec, RankLine, RunningJob, StartOptions } from './executor.ts'
import { FINISHED_STATES, type JobInfo, SlurmCommands } from './slurm-commands.ts'
import { OutputTail } from './slurm-output.ts'
import { buildSlurmScript } from './slurm-script.ts'
import { DEFAULT_TIMING, SlurmWatcher, type WatcherTiming, watcherFor } from './slurm-watcher.ts'

export interface SlurmExecutorOptions {
  /** The cluster's name in cairn.yaml (null: the Slurm commands on the worker's PATH). */
  name: string | null
  /** Environment of the Slurm commands (SLURM_CONF, PATH); default: this process's. */
  env?: NodeJS.ProcessEnv
  timing?: WatcherTiming
  /** How often a running job's output files are read. */
  tailIntervalMs?: number
  /** How long cancel waits for Slurm to confirm the job ended. */
  cancelTimeoutMs?: number
  /** A draining worker leaves its jobs running for re-attach instead of cancelling them. @default false */
  keepJobsOnShutdown?: boolean
}

export interface SlurmExecutor extends Executor {
  readonly commands: SlurmCommands
  readonly watcher: SlurmWatcher
}

function failedJob(handle: JobHandle, outcome: JobOutcome): RunningJob {
  return { handle, done: Promise.resolve(outcome), cancel: async () => undefined }
}

export function createSlurmExecutor(cluster: SlurmCluster | undefined, options: SlurmExecutorOptions = { name: null }): SlurmExecutor {
  const env = options.env ?? process.env
  const key = `${options.name ?? ''}\0${env.SLURM_CONF ?? ''}`
  // One watcher (and one counted set of commands) per cluster in this process.
  const watcher = watcherFor(key, () => new SlurmWatcher(new SlurmCommands(env), options.timing ?? DEFAULT_TIMING))
  const commands = watcher.commands
  const cancelTimeoutMs = options.cancelTimeoutMs ?? 30_000
  const tailIntervalMs = options.tailIntervalMs ?? 250
  const clusterName = options.name

  async function start(spec: JobSpec, startOptions: StartOptions): Promise<RunningJob> {
    // Failures before a job exists end at once, with a handle that names no job (jobId '').
    const none: JobHandle = { executor: 'slurm', cluster: clusterName, jobId: '' }
    if (cluster?.submit.via === 'ssh') return failedJob(none, { ok: false, kind: 'infrastructure', retryable: false, message: 'slurm: submitting over SSH to a login node is not supported yet (use submit: { via: local }); nothing ran' })
    const built = buildSlurmScript(spec, `cairn-${randomBytes(5).toString('hex')}`, { ...(cluster?.partition !== undefined ? { partition: cluster.partition } : {}), ...(cluster?.account !== undefined ? { account: cluster.account } : {}) })
    if (!built.ok) return failedJob(none, { ok: false, kind: 'infrastructure', retryable: false, message: `slurm: ${built.message}; nothing was submitted` })
    if (startOptions.signal.aborted) return failedJob(none, { ok: false, kind: 'cancelled', retryable: false, message: 'cancelled before the job was submitted; nothing ran' })
    const script = built.value
    try {
      await mkdir(script.files.dir, { recursive: true })
      await writeFile(script.files.env, script.envText, { mode: 0o600 })
      await writeFile(script.files.script, script.text, { mode: 0o700 })
    } catch (error) {
      return failedJob(none, { ok: false, kind: 'infrastructure', retryable: true, message: `slurm: cannot write the job script in ${script.files.dir}: ${(error as Error).message}; nothing was submitted` })
    }
    const submitted = await commands.submitHeld(script.files.script)
    if (!submitted.ok) return failedJob(none, { ok: false, kind: 'infrastructure', retryable: true, message: `slurm: ${submitted.message}` })
    const handle: JobHandle = { executor: 'slurm', cluster: clusterName, jobId: submitted.jobId }
    try {
      await startOptions.record(handle)
    } catch (error) {
      await commands.cancel(submitted.jobId)
      return failedJob(handle, { ok: false, kind: 'infrastructure', retryable: true, message: `the job could not be recorded (${(error as Error).message}); Slurm job ${submitted.jobId} was cancelled while held, nothing ran` })
    }
    startOptions.onProgress?.({ state: 'PENDING' })
    const job = follow(handle, { stdout: script.files.stdout, stderr: script.files.stderr }, spec, startOptions)
    if (!startOptions.signal.aborted) {
      const released = await commands.release(submitted.jobId)
      if (released.code !== 0) await job.fail(`scontrol release ${submitted.jobId} failed: ${released.stderr.trim()}`)
    }
    return job.running
  }

  async function reattach(handle: JobHandle, reattachOptions: ReattachOptions): Promise<RunningJob> {
    if (handle.executor !== 'slurm') throw new Error(`slurm: cannot re-attach a ${handle.executor} job`)
    const shown = await commands.showJob(handle.jobId)
    const info = shown === 'error' || shown === undefined ? undefined : shown
    // The output files are read again from their start: lines the earlier worker stored come once more.
    reattachOptions.onLine({ rank: -1, stream: 'stderr', line: `re-attached to Slurm job ${handle.jobId} (${info?.state ?? (shown === 'error' ? 'state unknown' : 'no longer known to the controller')}); its output is read again from the start` })
    if (info !== undefined) reattachOptions.onProgress?.({ state: info.state })
    const job = follow(handle, { stdout: info?.stdout, stderr: info?.stderr }, reattachOptions.spec, reattachOptions)
    if (shown === undefined) {
      const accounted = await commands.accounting(handle.jobId)
      job.finish(accounted)
    }
    return job.running
  }

  /** Follows a submitted job: watcher, output tails, signal, artifacts; `done` settles exactly once. */
  function follow(handle: JobHandle & { executor: 'slurm' }, files: { stdout: string | undefined; stderr: string | undefined }, spec: JobSpec | undefined, runOptions: Omit<StartOptions, 'record'>) {
    const jobId = handle.jobId
    let cancelReason: 'cancelled' | 'timeout' | 'shutdown' | undefined
    let settle!: (outcome: JobOutcome) => void
    const done = new Promise<JobOutcome>((resolve) => (settle = resolve))
    let settled = false
    let hosts: string[] = []
    const tasksPerNode = spec?.tasksPerNode ?? 1
    const hostOf = (rank: number): string | undefined => hosts[Math.floor(rank / tasksPerNode)]
    const emit = (line: RankLine): unknown => runOptions.onLine(line)
    // Lines name their rank's node: the node list is looked up once the job has written something.
    const resolveHosts = async (): Promise<void> => {
      if (hosts.length > 0) return
      const shown = await commands.showJob(jobId)
      if (shown !== 'error' && shown?.nodeList !== undefined) hosts = await commands.hostnames(shown.nodeList)
      if (hosts.length > 0) runOptions.onProgress?.({ ranks: Array.from({ length: hosts.length * tasksPerNode }, (_, rank) => ({ rank, host: hostOf(rank)! })) })
    }
    const hostsFirst = (): Promise<void> => resolveHosts().catch(() => undefined)
    const tails = [
      ...(files.stdout !== undefined ? [new OutputTail(files.stdout, 'stdout', emit, hostOf, hostsFirst)] : []),
      ...(files.stderr !== undefined && files.stderr !== files.stdout ? [new OutputTail(files.stderr, 'stderr', emit, hostOf, hostsFirst)] : []),
    ]
    let reading: Promise<void> = Promise.resolve()
    const readAll = (final: boolean): Promise<void> => {
      reading = reading.then(async () => {
        for (const tail of tails) await tail.read(final).catch(() => undefined)
      })
      return reading
    }
    const tailTimer = setInterval(() => void readAll(false), tailIntervalMs)

    const finish = (info: JobInfo | undefined): void => {
      if (settled) return
      settled = true
      watcher.unwatch(jobId)
      clearInterval(tailTimer)
      runOptions.signal.removeEventListener('abort', onAbort)
      runOptions.onProgress?.({ state: info?.state ?? 'UNKNOWN' })
      void (async () => {
        await resolveHosts().catch(() => undefined)
        await readAll(true)
        settle(await outcomeOf(info))
      })()
    }

    const outcomeOf = async (info: JobInfo | undefined): Promise<JobOutcome> => {
      if (cancelReason === 'shutdown') return { ok: false, kind: 'infrastructure', retryable: true, message: `the worker shut down; Slurm job ${jobId} was cancelled (scancel)` }
      if (cancelReason !== undefined) return { ok: false, kind: cancelReason, retryable: cancelReason === 'timeout', message: `Slurm job ${jobId} was ${cancelReason === 'timeout' ? 'stopped at the timeout' : 'cancelled'} (scancel)` }
      if (info === undefined) return { ok: false, kind: 'infrastructure', retryable: true, message: `Slurm job ${jobId} vanished: the controller no longer knows it and there is no accounting to tell its outcome` }
      switch (info.state) {
        case 'COMPLETED':
          return collectArtifacts(spec)
        case 'FAILED':
          return { ok: false, kind: 'exit_code', retryable: true, message: `Slurm job ${jobId} failed with exit code ${info.exitCode ?? '?'}`, ...(info.exitCode !== undefined ? { exitCode: info.exitCode } : {}) }
        case 'TIMEOUT':
        case 'DEADLINE':
          return { ok: false, kind: 'timeout', retryable: true, message: `Slurm job ${jobId} reached its Slurm time limit (${info.state})` }
        case 'CANCELLED':
          return { ok: false, kind: 'infrastructure', retryable: false, message: `Slurm job ${jobId} was cancelled outside cairn` }
        default:
          return { ok: false, kind: 'infrastructure', retryable: true, message: `Slurm job ${jobId} ended in state ${info.state}${info.reason !== undefined ? ` (${info.reason})` : ''}` }
      }
    }

    const cancel = async (reason: 'cancelled' | 'timeout' | 'shutdown'): Promise<void> => {
      if (settled) return
      cancelReason ??= reason
      await commands.cancel(jobId)
      const deadline = Date.now() + cancelTimeoutMs
      for (;;) {
        const shown = await commands.showJob(jobId)
        if (shown === undefined) return finish(undefined)
        if (shown !== 'error' && FINISHED_STATES.has(shown.state)) return finish(shown)
        if (Date.now() > deadline) {
          // Not confirmed: say so rather than pretend the job stopped.
          if (!settled) {
            settled = true
            clearInterval(tailTimer)
            watcher.unwatch(jobId)
            settle({ ok: false, kind: 'infrastructure', retryable: false, message: `scancel ${jobId} was not confirmed within ${cancelTimeoutMs} ms (state ${shown === 'error' ? 'unknown' : shown.state})` })
          }
          return
        }
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }

    const onAbort = (): void => {
      const cause = (runOptions.signal.reason as { cause?: unknown } | undefined)?.cause
      if (cause === 'shutdown' && options.keepJobsOnShutdown === true) {
        if (settled) return
        settled = true
        clearInterval(tailTimer)
        watcher.unwatch(jobId)
        settle({ ok: false, kind: 'infrastructure', retryable: true, message: `the worker shut down; Slurm job ${jobId} keeps running and is re-attached from its handle` })
        return
      }
      void cancel(cause === 'timeout' || cause === 'shutdown' ? cause : 'cancelled')
    }
    runOptions.signal.addEventListener('abort', onAbort, { once: true })

    watcher.watch(jobId, {
      onState: (state) => {
        runOptions.onProgress?.({ state })
        if (state === 'RUNNING') void resolveHosts().catch(() => undefined)
      },
      onFinished: (info) => finish(info),
    })
    const running: RunningJob = { handle, done, cancel }
    if (runOptions.signal.aborted) onAbort()
    return {
      running,
      finish,
      fail: async (message: string): Promise<void> => {
        await commands.cancel(jobId)
        if (settled) return
        settled = true
        clearInterval(tailTimer)
        watcher.unwatch(jobId)
        settle({ ok: false, kind: 'infrastructure', retryable: true, message })
      },
    }
  }

  async function collectArtifacts(spec: JobSpec | undefined): Promise<JobOutcome> {
    if (spec === undefined || spec.artifacts.length === 0) return { ok: true, artifacts: [] }
    const collected: string[] = []
    await mkdir(spec.artifactsDir, { recursive: true })
    for (const name of spec.artifacts) {
      const normalized = path.normalize(name)
      if (path.isAbsolute(normalized) || normalized.startsWith('..')) return { ok: false, kind: 'infrastructure', retryable: false, message: `artifact ${JSON.stringify(name)} must be a path inside rank 0's workdir` }
      const target = path.join(spec.artifactsDir, normalized)
      await mkdir(path.dirname(target), { recursive: true })
      // The cluster's workdir is on a shared file system: rank 0's files are readable here.
      const copied = await copyFile(path.join(spec.workdir, normalized), target).then(() => true, () => false)
      if (!copied) return { ok: false, kind: 'exit_code', retryable: false, message: `artifact ${JSON.stringify(name)} was not written by rank 0 (in ${spec.workdir})` }
      collected.push(target)
    }
    return { ok: true, artifacts: collected }
  }

  return { kind: 'slurm', outlivesWorker: true, ...(cluster?.workdir !== undefined ? { workRoot: cluster.workdir } : {}), start, reattach, commands, watcher }
}
