/**
 * The slurm executor: one Slurm job per attempt, submitted held, recorded, then released; ranks started by
 * srun inside the job; followed by the worker's watcher for its cluster (one squeue per interval for all
 * jobs); output tailed from the job's files; cancel and timeout -> scancel, confirmed with scontrol.
 *
 * Where the Slurm commands run is the cluster's `submit` (slurm-runner.ts): on this machine, or on a login node
 * over SSH (`via: ssh`), where the job's script is written, its output read and its artifacts fetched over
 * SFTP, all in the cluster's `workdir` as the login node sees it.
 *
 * Abort causes (the signal's reason, as the worker sets it): `cancelled` and `timeout` cancel the job;
 * `shutdown` cancels it too unless `keepJobsOnShutdown` (set it once handles are recorded durably with the
 * attempt, so that another worker re-attaches): then it only stops following and the job keeps running.
 */
import { randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { SlurmCluster } from '../config/config-types.ts'
import type { Executor, JobHandle, ReattachOptions, JobOutcome, JobSpec, RankLine, RunningJob, StartOptions } from './executor.ts'
import { FINISHED_STATES, type JobInfo, SlurmCommands } from './slurm-commands.ts'
import { OutputTail } from './slurm-output.ts'
import { checkSubmitEnv, LocalSlurmRunner, SshSlurmRunner, type SlurmRunner, UnreachableError } from './slurm-runner.ts'
import type { SshHostSetting } from './ssh-connection.ts'
import { buildSlurmScript } from './slurm-script.ts'
import { DEFAULT_TIMING, SlurmWatcher, type WatcherTiming, watcherFor } from './slurm-watcher.ts'

export interface SlurmExecutorOptions {
  /** The cluster's name in cairn.yaml (null: the Slurm commands on the worker's PATH). */
  name: string | null
  /** Environment of the Slurm commands run on this machine (SLURM_CONF, PATH); default: this process's. */
  env?: NodeJS.ProcessEnv
  /** `ssh_hosts` of cairn.yaml: the login node of a cluster with `submit: { via: ssh, host: NAME }`. */
  sshHosts?: Readonly<Record<string, SshHostSetting>>
  /** SSH handshake timeout for the login node. @default 20000 */
  connectTimeoutMs?: number
  timing?: WatcherTiming
  /** How often a running job's output files are read. @default 250 (on this machine), 1000 (over SSH) */
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

/** The runner of a cluster's `submit` (not yet created: the watcher of its key may exist already), or why there is none. */
function runnerOf(cluster: SlurmCluster | undefined, options: SlurmExecutorOptions): { key: string; create: () => SlurmRunner } | { error: string } {
  const label = options.name ?? '(the Slurm commands on the PATH)'
  const submitEnv = cluster?.submit.env ?? {}
  const badEnv = checkSubmitEnv(submitEnv)
  if (badEnv !== undefined) return { error: `cluster ${label}: ${badEnv}` }
  const env = Object.fromEntries(Object.entries(submitEnv).filter((entry): entry is [string, string] => entry[1] !== undefined))
  if (cluster?.submit.via !== 'ssh') {
    const local = new LocalSlurmRunner({ ...(options.env ?? process.env), ...env }, options.name)
    return { key: local.key, create: () => local }
  }
  const hostName = cluster.submit.host
  const host = hostName !== undefined && options.sshHosts !== undefined && Object.hasOwn(options.sshHosts, hostName) ? options.sshHosts[hostName] : undefined
  if (hostName === undefined || host === undefined) return { error: `cluster ${label} submits over SSH to ${JSON.stringify(hostName ?? '')}, which is not an entry of ssh_hosts (defined: ${Object.keys(options.sshHosts ?? {}).join(', ') || 'none'})` }
  if (cluster.workdir === undefined || !cluster.workdir.startsWith('/')) return { error: `cluster ${label} submits over SSH and needs a workdir: an absolute folder on the cluster's shared file system, as the login node sees it` }
  const ssh = new SshSlurmRunner({ clusterName: options.name, hostName, host, env, ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}) })
  return { key: ssh.key, create: () => ssh }
}

export function createSlurmExecutor(cluster: SlurmCluster | undefined, options: SlurmExecutorOptions = { name: null }): SlurmExecutor {
  const runner = runnerOf(cluster, options)
  const misconfigured = 'error' in runner ? runner.error : undefined
  const key = 'error' in runner ? `unusable\0${options.name ?? ''}` : runner.key
  // One watcher (and one counted set of commands, one connection to a login node) per cluster in this process.
  const watcher = watcherFor(key, () => new SlurmWatcher(new SlurmCommands('error' in runner ? new LocalSlurmRunner({}) : runner.create()), options.timing ?? DEFAULT_TIMING))
  const commands = watcher.commands
  const files = commands.runner.files
  const overSsh = cluster?.submit.via === 'ssh'
  const cancelTimeoutMs = options.cancelTimeoutMs ?? 30_000
  const tailIntervalMs = options.tailIntervalMs ?? (overSsh ? 1000 : 250)
  const clusterName = options.name

  async function start(spec: JobSpec, startOptions: StartOptions): Promise<RunningJob> {
    return submit(spec, startOptions.record, startOptions)
  }

  /**
   * Writes the job's script, records the job's unique name (jobId '') BEFORE sbatch is sent, submits the
   * job held, records its id and only then releases it. A worker that dies anywhere in between leaves
   * either nothing submitted or a held job that the worker taking the attempt over finds by its name
   * (`adopt`): never a job that runs without being recorded, never a second job for the attempt.
   */
  async function submit(spec: JobSpec, record: (handle: JobHandle) => Promise<void>, runOptions: Omit<StartOptions, 'record'>): Promise<RunningJob> {
    // Failures before a job exists end at once, with a handle that names no job (jobId '').
    const none: JobHandle = { executor: 'slurm', cluster: clusterName, jobId: '' }
    if (misconfigured !== undefined) return failedJob(none, { ok: false, kind: 'infrastructure', retryable: false, message: `slurm: ${misconfigured}; nothing was submitted` })
    const built = buildSlurmScript(spec, `cairn-${randomBytes(5).toString('hex')}`, { ...(cluster?.partition !== undefined ? { partition: cluster.partition } : {}), ...(cluster?.account !== undefined ? { account: cluster.account } : {}) })
    if (!built.ok) return failedJob(none, { ok: false, kind: 'infrastructure', retryable: false, message: `slurm: ${built.message}; nothing was submitted` })
    if (runOptions.signal.aborted) return failedJob(none, { ok: false, kind: 'cancelled', retryable: false, message: 'cancelled before the job was submitted; nothing ran' })
    const script = built.value
    const intent: JobHandle = { executor: 'slurm', cluster: clusterName, jobId: '', jobName: script.jobName }
    try {
      await record(intent)
    } catch (error) {
      return failedJob(none, { ok: false, kind: 'infrastructure', retryable: true, message: `the job could not be recorded (${(error as Error).message}); nothing was submitted` })
    }
    try {
      await files.writeFiles(script.files.dir, [
        { path: script.files.env, text: script.envText, mode: 0o600 },
        { path: script.files.script, text: script.text, mode: 0o700 },
      ])
    } catch (error) {
      if (error instanceof UnreachableError) return failedJob(intent, { ok: false, kind: 'infrastructure', retryable: !error.hostKeyRefused, message: `slurm: ${error.message}; nothing was submitted` })
      return failedJob(intent, { ok: false, kind: 'infrastructure', retryable: true, message: `slurm: cannot write the job script in ${script.files.dir} (${commands.where}): ${(error as Error).message}; nothing was submitted` })
    }
    const submitted = await commands.submitHeld(script.files.script)
    if (!submitted.ok) {
      // sbatch's answer was lost (the connection dropped while it ran): a job it may have submitted is held;
      // it is found by its unique name and cancelled, so that it never runs.
      if (submitted.unknownOutcome === true) {
        const cancelled = await commands.cancelByName(script.jobName)
        const what = cancelled.code === 0 ? `a job it may have submitted (held, named ${script.jobName}) was cancelled` : `a job it may have submitted is held and never runs, but could not be cancelled (scancel --name=${script.jobName}: ${cancelled.stderr.trim()})`
        return failedJob(intent, { ok: false, kind: 'infrastructure', retryable: true, message: `slurm: ${submitted.message}; ${what}` })
      }
      return failedJob(intent, { ok: false, kind: 'infrastructure', retryable: submitted.hostKeyRefused !== true, message: `slurm: ${submitted.message}` })
    }
    const handle: JobHandle = { ...intent, jobId: submitted.jobId }
    try {
      await record(handle)
    } catch (error) {
      await commands.cancel(submitted.jobId)
      return failedJob(handle, { ok: false, kind: 'infrastructure', retryable: true, message: `the job could not be recorded (${(error as Error).message}); Slurm job ${submitted.jobId} was cancelled while held, nothing ran` })
    }
    runOptions.onProgress?.({ state: 'PENDING' })
    const job = follow(handle, { stdout: script.files.stdout, stderr: script.files.stderr }, spec, runOptions)
    if (!runOptions.signal.aborted) {
      const released = await commands.release(submitted.jobId)
      if (released.code !== 0) await job.fail(`scontrol release ${submitted.jobId} on ${commands.where} failed (exit ${released.code}): ${released.stderr.trim()}; the job was cancelled`)
    }
    return job.running
  }

  /**
   * A handle recorded before sbatch was sent, without the job's id: the worker that submitted died before it
   * learned or recorded the id. The job, if sbatch made one, is held (nothing releases a job whose id is not
   * recorded) and carries the recorded name: it is adopted (id recorded, released, followed); any other job of
   * that name is cancelled. When there is none, sbatch never made it and the job is submitted now, once.
   * Without `record` (a worker only stopping a cancelled attempt's job) every job of that name is cancelled.
   */
  async function adopt(handle: JobHandle & { executor: 'slurm' }, options: ReattachOptions): Promise<RunningJob> {
    const name = handle.jobName
    if (name === undefined || name === '') return failedJob(handle, { ok: false, kind: 'infrastructure', retryable: false, message: 'slurm: the recorded handle names neither a job id nor a job name; nothing to re-attach to' })
    if (options.record === undefined || options.signal.aborted) {
      const cancelled = await commands.cancelByName(name)
      return failedJob(handle, { ok: false, kind: 'cancelled', retryable: false, message: cancelled.code === 0 ? `the job named ${name}, submitted without its id recorded, was cancelled while held (scancel --name); it never ran` : `scancel --name=${name} on ${commands.where} failed (exit ${cancelled.code}): ${cancelled.stderr.trim()}` })
    }
    const found = await commands.jobsNamed(name)
    if (found === undefined) {
      return failedJob(handle, { ok: false, kind: 'infrastructure', retryable: true, message: `slurm: cannot look up the job named ${name} that an earlier worker may have submitted (${commands.lastFailure ?? 'squeue failed'}); a job of that name stays held and never runs` })
    }
    // A held job that was cancelled never ran; any other state means that job is this attempt's.
    const candidates = found.filter((j) => j.state !== 'CANCELLED').sort((a, b) => Number(a.jobId) - Number(b.jobId))
    const chosen = candidates.find((j) => !FINISHED_STATES.has(j.state)) ?? candidates.at(-1)
    for (const other of candidates) if (other !== chosen && !FINISHED_STATES.has(other.state)) await commands.cancel(other.jobId)
    if (chosen === undefined) {
      options.onLine({ rank: -1, stream: 'stderr', line: `no Slurm job named ${name} exists: the earlier worker died before sbatch submitted it; submitting it now` })
      if (options.spec === undefined) return failedJob(handle, { ok: false, kind: 'infrastructure', retryable: true, message: `slurm: the job named ${name} was never submitted and its spec is unknown here; nothing was submitted` })
      return submit(options.spec, options.record, options)
    }
    const adopted: JobHandle = { ...handle, jobId: chosen.jobId }
    try {
      await options.record(adopted)
    } catch (error) {
      if (!FINISHED_STATES.has(chosen.state)) await commands.cancel(chosen.jobId)
      return failedJob(adopted, { ok: false, kind: 'infrastructure', retryable: true, message: `the job could not be recorded (${(error as Error).message}); Slurm job ${chosen.jobId} was cancelled, nothing ran` })
    }
    return attach(adopted, options, (info) => `found Slurm job ${chosen.jobId} (${name}), submitted by an earlier worker that died before recording its id (${info?.state ?? chosen.state}); it is this attempt's job`)
  }

  async function reattach(handle: JobHandle, reattachOptions: ReattachOptions): Promise<RunningJob> {
    if (handle.executor !== 'slurm') throw new Error(`slurm: cannot re-attach a ${handle.executor} job`)
    if (misconfigured !== undefined) return failedJob(handle, { ok: false, kind: 'infrastructure', retryable: true, message: `slurm: cannot follow Slurm job ${handle.jobId}: ${misconfigured}` })
    if (handle.jobId === '') return adopt(handle, reattachOptions)
    // The output files are read again from their start: lines the earlier worker stored come once more.
    return attach(handle, reattachOptions, (info, shown) => `re-attached to Slurm job ${handle.jobId} (${info?.state ?? (shown === 'error' ? 'state unknown' : 'no longer known to the controller')})${overSsh ? ` through ${commands.where}` : ''}; its output is read again from the start`)
  }

  /**
   * Follows a job whose id is recorded, from what `scontrol show job` says of it now (`announce` makes the
   * line that says so): its output read from the start, a job the controller no longer knows finished from
   * accounting, and a held one released when the caller takes the attempt over (passes `record`).
   */
  async function attach(handle: JobHandle & { executor: 'slurm' }, options: ReattachOptions, announce: (info: JobInfo | undefined, shown: JobInfo | undefined | 'error') => string): Promise<RunningJob> {
    const shown = await commands.showJob(handle.jobId)
    const info = shown === 'error' || shown === undefined ? undefined : shown
    options.onLine({ rank: -1, stream: 'stderr', line: announce(info, shown) })
    if (info !== undefined) options.onProgress?.({ state: info.state })
    const job = follow(handle, { stdout: info?.stdout, stderr: info?.stderr }, options.spec, options)
    if (shown === undefined) job.finish(await commands.accounting(handle.jobId))
    else if (options.record !== undefined) await releaseIfHeld(handle.jobId, info, job, options.signal)
    return job.running
  }

  /**
   * A job whose id is recorded but still held: the worker that submitted it stopped (drained, or died)
   * between recording the id and `scontrol release`. The id is recorded, so a worker taking the attempt
   * over (one that passes `record`) lets it run; one that only stops a cancelled attempt's job does not.
   */
  async function releaseIfHeld(jobId: string, info: JobInfo | undefined, job: ReturnType<typeof follow>, signal: AbortSignal): Promise<void> {
    if (signal.aborted || info?.state !== 'PENDING' || !/held/i.test(info.reason ?? '')) return
    const released = await commands.release(jobId)
    if (released.code !== 0) await job.fail(`scontrol release ${jobId} on ${commands.where} failed (exit ${released.code}): ${released.stderr.trim()}; the job was cancelled`)
  }

  /** Follows a submitted job: watcher, output tails, signal, artifacts; `done` settles exactly once. */
  function follow(handle: JobHandle & { executor: 'slurm' }, output: { stdout: string | undefined; stderr: string | undefined }, spec: JobSpec | undefined, runOptions: Omit<StartOptions, 'record'>) {
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
      ...(output.stdout !== undefined ? [new OutputTail(output.stdout, 'stdout', emit, hostOf, hostsFirst, files)] : []),
      ...(output.stderr !== undefined && output.stderr !== output.stdout ? [new OutputTail(output.stderr, 'stderr', emit, hostOf, hostsFirst, files)] : []),
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
      onTrouble: (message) => void emit({ rank: -1, stream: 'stderr', line: message ?? `squeue on ${commands.where} answers again` }),
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
      const normalized = path.posix.normalize(name)
      if (path.posix.isAbsolute(normalized) || normalized === '..' || normalized.startsWith('../')) return { ok: false, kind: 'infrastructure', retryable: false, message: `artifact ${JSON.stringify(name)} must be a path inside rank 0's workdir` }
      const target = path.join(spec.artifactsDir, normalized)
      // The cluster's workdir is on a shared file system: rank 0's files are readable here, or over SFTP on the login node.
      const source = path.posix.join(spec.workdir, normalized)
      const size = await files.size(source).catch((error: unknown) => error as Error)
      if (size instanceof Error) return { ok: false, kind: 'infrastructure', retryable: true, message: `artifact ${JSON.stringify(name)} could not be looked up (${commands.where}): ${size.message}` }
      if (size === undefined) return { ok: false, kind: 'exit_code', retryable: false, message: `artifact ${JSON.stringify(name)} was not written by rank 0 (in ${spec.workdir})` }
      try {
        await files.fetch(source, target)
      } catch (error) {
        return { ok: false, kind: 'infrastructure', retryable: true, message: `artifact ${JSON.stringify(name)} could not be fetched (${commands.where}): ${(error as Error).message}` }
      }
      collected.push(target)
    }
    return { ok: true, artifacts: collected }
  }

  /** Releases the login node's connection once no job of this cluster is followed in this process. */
  async function close(): Promise<void> {
    if (watcher.size === 0) await commands.runner.closeIdle()
  }

  return { kind: 'slurm', outlivesWorker: true, ...(cluster?.workdir !== undefined ? { workRoot: cluster.workdir } : {}), start, reattach, close, commands, watcher }
}
