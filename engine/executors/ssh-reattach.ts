/**
 * Re-attach for the ssh executor: a worker that takes over an attempt follows the ranks another worker
 * started, from the pgids recorded in the handle (their liveness, their output, their exit statuses), and
 * can cancel them. It never starts a job.
 */
import type { ClientChannel } from 'ssh2'
import type { JobHandle, JobOutcome, JobSpec, RankLine, ReattachOptions, RunningJob } from './executor.ts'
import type { SshClusterSetting } from './ssh.ts'
import type { ConnectResult, SshConnection } from './ssh-connection.ts'
import { aliveCommand, followOutputCommand, readStatusCommand } from './ssh-remote-commands.ts'
import { endedState, failedJob, hostLabel, readLines } from './ssh-job-parts.ts'

/** What re-attach uses of the executor: its cluster, settings and connection pool. */
export interface ReattachHost {
  cluster: SshClusterSetting
  followIntervalMs: number
  keepJobsOnShutdown: boolean
  connect(index: number): Promise<ConnectResult>
  connectAll(indexes: readonly number[]): Promise<{ ok: true; connections: SshConnection[] } | { ok: false; hostKeyRefused: boolean; message: string }>
  killProcesses(processes: readonly { hostIndex: number; pgid: number }[]): Promise<{ ok: boolean; message?: string }>
  fetchArtifacts(connection: SshConnection, spec: JobSpec): Promise<string[]>
}

/** How long the output of re-attached ranks that ended may take to arrive in full. */
const OUTPUT_DRAIN_MS = 5000

/**
 * One channel per re-attached rank that streams its output file into the task log (`tail -F` until its
 * wrapper exits). A host whose tail cannot follow (no GNU --pid) says so once and the rank is followed
 * without its output. `finished` waits for every follower (at most `ms`); `close` ends them at once.
 */
async function followOutputs(ex: ReattachHost, handle: JobHandle & { executor: 'ssh' }, processes: readonly { hostIndex: number; pgid: number }[], onLine: (line: RankLine) => unknown): Promise<{ finished(ms: number): Promise<void>; close(): Promise<void> }> {
  const channels: ClientChannel[] = []
  const reading: Promise<void>[] = []
  for (const [rank, recorded] of handle.processes.entries()) {
    if (recorded.status === undefined) continue
    const host = ex.cluster.hosts[processes[rank]!.hostIndex]!
    const connected = await ex.connect(processes[rank]!.hostIndex)
    const channel = connected.ok ? await connected.connection.exec(followOutputCommand(`${recorded.status}.out`, recorded.pgid)).catch(() => undefined) : undefined
    if (!channel) {
      onLine({ rank: -1, stream: 'stderr', line: `rank ${rank}'s output cannot be followed on ${recorded.host}; it stays in ${recorded.status}.out there` })
      continue
    }
    channels.push(channel)
    channel.stderr.resume()
    let lines = 0
    const exit = new Promise<number | null>((resolve) => channel.on('exit', (code: number | null) => resolve(code)))
    reading.push(readLines(channel, (line) => {
      lines++
      return onLine({ rank, host: host.host, stream: 'stdout', line })
    }).then(async () => {
      const code = await Promise.race([exit, new Promise<null>((resolve) => setTimeout(() => resolve(null), 100))])
      if (code !== 0 && code !== null && lines === 0) onLine({ rank: -1, stream: 'stderr', line: `rank ${rank}'s output cannot be followed on ${recorded.host} (tail -F --pid exited with ${code}); it stays in ${recorded.status}.out there` })
    }))
  }
  const close = async (): Promise<void> => {
    for (const channel of channels) channel.close()
    await Promise.allSettled(reading)
  }
  return {
    close,
    async finished(ms) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([Promise.allSettled(reading), new Promise((resolve) => (timer = setTimeout(resolve, ms)))])
      clearTimeout(timer)
      await close()
    },
  }
}

/**
 * Follows ranks started earlier from their recorded pgids: their liveness, and their output, read from
 * the file each rank's wrapper appends it to (from its first line, so what the worker before logged
 * appears again). Ranks outlive their worker when it handed them over while draining; the hang-up
 * watchdog of each rank stops it when the connection that started it drops, so after a worker's death
 * the groups are usually gone already, which is reported.
 */
export async function reattachSshJob(ex: ReattachHost, handle: JobHandle, options: ReattachOptions): Promise<RunningJob> {
  if (handle.executor !== 'ssh' || handle.cluster !== ex.cluster.name) {
    return failedJob(handle, { ok: false, kind: 'infrastructure', retryable: false, message: `handle of ${handle.executor} ${'cluster' in handle ? handle.cluster : ''} given to the ssh executor of cluster ${ex.cluster.name}` })
  }
  const processes: { hostIndex: number; pgid: number }[] = []
  for (const process of handle.processes) {
    const hostIndex = ex.cluster.hosts.findIndex((host) => hostLabel(host) === process.host)
    if (hostIndex < 0) return failedJob(handle, { ok: false, kind: 'infrastructure', retryable: false, message: `host ${process.host} of the recorded job is not a host of cluster ${ex.cluster.name}` })
    processes.push({ hostIndex, pgid: process.pgid })
  }
  const hostIndexes = [...new Set(processes.map((process) => process.hostIndex))]
  const connected = await ex.connectAll(hostIndexes)
  if (!connected.ok) return failedJob(handle, { ok: false, kind: 'infrastructure', retryable: !connected.hostKeyRefused, message: connected.message.replace(/; nothing was started on any host$/, '') })

  const alive = async (): Promise<{ ok: true; count: number } | { ok: false; message: string }> => {
    let count = 0
    for (const index of hostIndexes) {
      const pgids = processes.filter((process) => process.hostIndex === index).map((process) => process.pgid)
      const result = await ex.connect(index)
      if (!result.ok) return { ok: false, message: result.message }
      try {
        const run = await result.connection.run(aliveCommand(pgids))
        count += run.stdout.split('\n').filter((line) => line.trim() !== '').length
      } catch (error) {
        return { ok: false, message: (error as Error).message }
      }
    }
    return { ok: true, count }
  }

  /** Each rank's exit status, as its wrapper wrote it (undefined: none, the rank was killed or never ran). */
  const statuses = async (): Promise<{ ok: true; codes: (number | undefined)[] } | { ok: false; message: string }> => {
    const codes: (number | undefined)[] = handle.processes.map(() => undefined)
    for (const index of hostIndexes) {
      const mine = handle.processes.map((process, rank) => ({ rank, file: process.status, hostIndex: processes[rank]!.hostIndex })).filter((entry) => entry.hostIndex === index && entry.file !== undefined)
      if (mine.length === 0) continue
      const result = await ex.connect(index)
      if (!result.ok) return { ok: false, message: result.message }
      try {
        const run = await result.connection.run(readStatusCommand(mine.map((entry) => entry.file!)))
        const lines = run.stdout.split('\n')
        mine.forEach((entry, i) => {
          const code = lines[i]?.trim() ?? '-'
          codes[entry.rank] = /^\d+$/.test(code) ? Number(code) : undefined
        })
      } catch (error) {
        return { ok: false, message: (error as Error).message }
      }
    }
    return { ok: true, codes }
  }
  const describe = (rank: number): string => `rank ${rank} on ${handle.processes[rank]!.host}`
  /** The outcome of ranks that have all ended, from their exit statuses. */
  const outcomeOfEnded = async (): Promise<JobOutcome> => {
    const read = await statuses()
    if (!read.ok) return { ok: false, kind: 'infrastructure', retryable: true, message: `the recorded ranks ended, but their exit statuses could not be read: ${read.message}` }
    // A rank that failed decides (the others were stopped because of it, and may have left no status).
    const failed = read.codes.findIndex((code) => code !== undefined && code !== 0)
    if (failed >= 0) {
      options.onProgress?.({ state: 'FAILED' })
      return { ok: false, kind: 'exit_code', retryable: true, message: `${describe(failed)} exited with code ${read.codes[failed]}`, exitCode: read.codes[failed]! }
    }
    const unknown = read.codes.flatMap((code, rank) => (code === undefined ? [rank] : []))
    if (unknown.length > 0) {
      options.onProgress?.({ state: 'GONE' })
      return { ok: false, kind: 'infrastructure', retryable: true, message: `the recorded ranks (${handle.processes.map((process) => `${process.host} pgid ${process.pgid}`).join(', ')}) are gone and ${unknown.map(describe).join(', ')} left no exit status (stopped, e.g. by its hang-up watchdog when the worker died); their outcome is not known` }
    }
    options.onProgress?.({ state: 'COMPLETED' })
    if (options.spec === undefined || options.spec.artifacts.length === 0) return { ok: true, artifacts: [] }
    const first = await ex.connect(0)
    if (!first.ok) return { ok: false, kind: 'infrastructure', retryable: true, message: `fetching the artifacts from rank 0 failed: ${first.message}` }
    try {
      return { ok: true, artifacts: await ex.fetchArtifacts(first.connection, options.spec) }
    } catch (error) {
      return { ok: false, kind: 'infrastructure', retryable: true, message: `fetching the artifacts from rank 0 on ${hostLabel(ex.cluster.hosts[0]!)} failed: ${(error as Error).message}` }
    }
  }

  const initially = await alive()
  if (!initially.ok) return failedJob(handle, { ok: false, kind: 'infrastructure', retryable: true, message: `could not check the recorded ranks: ${initially.message}` })
  if (initially.count === 0) {
    options.onLine({ rank: -1, stream: 'stderr', line: 're-attached over SSH: every recorded rank has ended; reading their exit statuses' })
    return { handle, done: outcomeOfEnded(), cancel: async () => {} }
  }
  options.onLine({ rank: -1, stream: 'stderr', line: `re-attached to ${initially.count} running rank(s) over SSH; each rank's output follows from its start (lines logged before the hand-over appear again)` })
  const outputs = await followOutputs(ex, handle, processes, options.onLine)
  options.onProgress?.({ state: 'RUNNING', ranks: handle.processes.map((process, rank) => ({ rank, host: ex.cluster.hosts[processes[rank]!.hostIndex]!.host })) })

  let stopping: 'cancelled' | 'timeout' | undefined
  let killing: Promise<{ ok: boolean; message?: string }> | undefined
  const cancel = async (reason: 'cancelled' | 'timeout') => {
    stopping ??= reason
    const result = await (killing ??= ex.killProcesses(processes))
    if (!result.ok) throw new Error(`could not confirm that every rank stopped: ${result.message}`)
  }
  // A worker shutting down with keepJobsOnShutdown stops following; the ranks run on for the next worker.
  let leaving = false
  const onAbort = (): void => {
    const cause = (options.signal.reason as { cause?: unknown } | undefined)?.cause
    if (cause === 'shutdown' && ex.keepJobsOnShutdown && stopping === undefined) leaving = true
    else void cancel(cause === 'timeout' ? 'timeout' : 'cancelled').catch(() => {})
  }
  options.signal.addEventListener('abort', onAbort, { once: true })
  if (options.signal.aborted) onAbort()
  const followed = (async (): Promise<JobOutcome | undefined> => {
    for (;;) {
      if (leaving) return { ok: false, kind: 'infrastructure', retryable: true, message: 'the worker shut down; the re-attached ranks keep running and are re-attached from the handle again' }
      if (killing !== undefined) await killing
      const now = await alive()
      if (!now.ok) return { ok: false, kind: 'infrastructure', retryable: true, message: `lost the re-attached ranks: ${now.message}` }
      if (now.count === 0) return undefined
      await new Promise((resolve) => setTimeout(resolve, ex.followIntervalMs))
    }
  })()
  const done = (async (): Promise<JobOutcome> => {
    const early = await followed
    // The ranks ended: their output's last lines arrive as each follower sees its wrapper gone.
    await (early === undefined ? outputs.finished(OUTPUT_DRAIN_MS) : outputs.close())
    if (early !== undefined) return early
    options.signal.removeEventListener('abort', onAbort)
    if (stopping !== undefined) {
      options.onProgress?.({ state: endedState({ ok: false, kind: stopping }) })
      return { ok: false, kind: stopping, retryable: stopping === 'timeout', message: `${stopping}; every re-attached rank was stopped` }
    }
    return outcomeOfEnded()
  })()
  return { handle, done, cancel }
}
