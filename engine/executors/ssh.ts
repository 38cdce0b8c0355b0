/**
 * The ssh executor: ranks run on the hosts of an `ssh` cluster of cairn.yaml, one ssh2 connection per host.
 *
 * How a rank runs (one SSH exec channel per rank):
 *   1. The channel runs `exec setsid -w sh -c WRAPPER cairn-rank WORKDIR NAME=VALUE... -- ARGV...`, every word
 *      single-quoted; the wrapper (ssh-remote-commands.ts, with the other remote commands) is fixed text and
 *      user strings only ever arrive as its positional parameters. setsid makes the wrapper a session and process group leader, so its pid is the
 *      group id of everything the rank starts.
 *   2. The wrapper prints `cairn-pgid <pgid>` and waits for a line on stdin. The executor collects every
 *      rank's pgid, calls `record(handle)`, and only when that resolved writes `go`: nothing runs before the
 *      job is recorded.
 *   3. The program runs in the rank's workdir (created) with the rank environment; its stdout and stderr come
 *      back over the channel line by line. A watchdog in the group reads the channel's stdin: when the
 *      connection drops, stdin ends and the watchdog stops the whole group (TERM, KILL 5 s later), so a lost
 *      worker leaves no orphan behind.
 * Cancel and timeout send TERM to every rank's group on every host, KILL after a grace, and return only when
 * `kill -0 -PGID` reports every group gone.
 */
import path from 'node:path'
import type { ClientChannel } from 'ssh2'
import { rankEnvironment, type Executor, type JobHandle, type JobOutcome, type JobSpec, type RankLine, type ReattachOptions, type RunningJob, type StartOptions } from './executor.ts'
import { killCommand, rankCommand, statusPath } from './ssh-remote-commands.ts'
import type { ConnectResult, SshConnection, SshHostSetting } from './ssh-connection.ts'
import { SshConnectionPool } from './ssh-pool.ts'
import { endedState, failedJob, freeRendezvousPort, hostLabel, readLines } from './ssh-job-parts.ts'
import { reattachSshJob } from './ssh-reattach.ts'
import type { ReattachHost } from './ssh-reattach.ts'

export { hostLabel }
import { fetchRemote } from './sftp-files.ts'

/** An `ssh` cluster of cairn.yaml with its name (the name goes into job handles). */
export interface SshClusterSetting {
  name: string
  hosts: readonly SshHostSetting[]
  known_hosts_file?: string
  workdir?: string
}

export interface SshExecutorOptions {
  /** Time between TERM and KILL when stopping ranks. Default 5000 ms. */
  killGraceMs?: number
  /** SSH handshake and authentication timeout. Default 20000 ms. */
  connectTimeoutMs?: number
  /** How often a re-attached job is checked. Default 1000 ms. */
  followIntervalMs?: number
  /**
   * A worker that shuts down detaches from its ranks instead of stopping them (their hang-up watchdogs stand
   * down), so that the worker taking the attempt over re-attaches. Set when the handle is stored with the
   * attempt. Cancel and timeout still stop every rank. @default false
   */
  keepJobsOnShutdown?: boolean
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

interface Rank {
  rank: number
  node: number
  connection: SshConnection
  host: SshHostSetting
  channel: ClientChannel
  pgid: Promise<number>
  /** `lost`: the channel closed without an exit status (its connection dropped). */
  exit: Promise<{ code: number | null; signal?: string; lost?: boolean }>
  output: Promise<void>
  /** Tells the rank's watchdog to stand down (the ranks run on without this connection); true once it answered. */
  detach(timeoutMs: number): Promise<boolean>
}

export class SshExecutor implements Executor {
  readonly kind = 'ssh' as const
  readonly outlivesWorker = true
  readonly cluster: SshClusterSetting
  /** Ranks' folders on the hosts: the cluster's `workdir`, else /tmp/cairn-train. */
  readonly workRoot: string
  private readonly killGraceMs: number
  private readonly connectTimeoutMs: number
  private readonly followIntervalMs: number
  private readonly keepJobsOnShutdown: boolean
  /** One connection per host (by index in cluster.hosts), shared by the jobs of this executor. */
  private readonly pool: SshConnectionPool

  constructor(cluster: SshClusterSetting, options: SshExecutorOptions = {}) {
    if (cluster.hosts.length === 0) throw new Error(`cluster ${cluster.name} has no hosts`)
    this.cluster = cluster
    this.workRoot = cluster.workdir ?? '/tmp/cairn-train'
    this.killGraceMs = options.killGraceMs ?? 5_000
    this.connectTimeoutMs = options.connectTimeoutMs ?? 20_000
    this.followIntervalMs = options.followIntervalMs ?? 1_000
    this.keepJobsOnShutdown = options.keepJobsOnShutdown ?? false
    this.pool = new SshConnectionPool(cluster.hosts, cluster.known_hosts_file, this.connectTimeoutMs)
  }

  /** The connection to host `index`, reusing a live one. */
  private connect(index: number): Promise<ConnectResult> {
    return this.pool.connect(index)
  }

  /** Connects to every listed host first; when one fails (a refused host key included), nothing is run anywhere. */
  private async connectAll(indexes: readonly number[]): Promise<{ ok: true; connections: SshConnection[] } | { ok: false; hostKeyRefused: boolean; message: string }> {
    const results = await Promise.all(indexes.map((index) => this.connect(index)))
    const failures = results.filter((result) => !result.ok)
    if (failures.length > 0) {
      return { ok: false, hostKeyRefused: failures.some((failure) => failure.hostKeyRefused), message: `${failures.map((failure) => failure.message).join('; ')}; nothing was started on any host` }
    }
    return { ok: true, connections: results.map((result) => (result as { connection: SshConnection }).connection) }
  }

  /** Closes the connections (a worker shutting down; running jobs lose their ranks to the hang-up watchdog). */
  async close(): Promise<void> {
    await this.pool.close()
  }

  /** Stops the given groups on one host, TERM then KILL; resolves true once `kill -0` finds none of them. */
  private async killOnHost(index: number, pgids: readonly number[]): Promise<{ ok: boolean; message?: string }> {
    if (pgids.length === 0) return { ok: true }
    const connected = await this.connect(index)
    if (!connected.ok) return { ok: false, message: connected.message }
    try {
      const result = await connected.connection.run(killCommand(this.killGraceMs, pgids))
      return result.code === 0 ? { ok: true } : { ok: false, message: `${hostLabel(this.cluster.hosts[index]!)}: ${result.stdout.trim() || result.stderr.trim() || `exit ${result.code}`}` }
    } catch (error) {
      return { ok: false, message: `${hostLabel(this.cluster.hosts[index]!)}: ${(error as Error).message}` }
    }
  }

  private async killProcesses(processes: readonly { hostIndex: number; pgid: number }[]): Promise<{ ok: boolean; message?: string }> {
    const byHost = new Map<number, number[]>()
    for (const process of processes) byHost.set(process.hostIndex, [...(byHost.get(process.hostIndex) ?? []), process.pgid])
    const results = await Promise.all([...byHost].map(([index, pgids]) => this.killOnHost(index, pgids)))
    const failed = results.filter((result) => !result.ok)
    return failed.length === 0 ? { ok: true } : { ok: false, message: failed.map((result) => result.message).join('; ') }
  }

  async start(spec: JobSpec, options: StartOptions): Promise<RunningJob> {
    const noProcesses: JobHandle = { executor: 'ssh', cluster: this.cluster.name, processes: [] }
    const invalid = this.validate(spec)
    if (invalid !== undefined) return failedJob(noProcesses, { ok: false, kind: 'infrastructure', retryable: false, message: invalid })
    if (options.signal.aborted) return failedJob(noProcesses, { ok: false, kind: 'cancelled', retryable: false, message: 'cancelled before the job started; nothing ran' })

    const hostIndexes = Array.from({ length: spec.nodes }, (_, node) => node)
    const connected = await this.connectAll(hostIndexes)
    if (!connected.ok) return failedJob(noProcesses, { ok: false, kind: 'infrastructure', retryable: !connected.hostKeyRefused, message: connected.message })

    const first = this.cluster.hosts[0]!
    const masterAddr = first.address ?? first.host
    const masterPort = spec.masterPort ?? (await freeRendezvousPort(connected.connections[0]!, masterAddr))
    const worldSize = spec.nodes * spec.tasksPerNode
    // Every rank's channel opens at once (one round trip for the job, not one per rank); each is followed as
    // soon as it is open, and its wrapper runs nothing before `go`.
    const ranks: Rank[] = []
    const openings = await Promise.allSettled(
      hostIndexes.flatMap((node) =>
        Array.from({ length: spec.tasksPerNode }, async (_, localRank) => {
          const connection = connected.connections[node]!
          const rank = node * spec.tasksPerNode + localRank
          const env = { ...spec.env, ...rankEnvironment({ rank, nodeRank: node, localRank, worldSize, localWorldSize: spec.tasksPerNode, masterAddr, masterPort }) }
          const channel = await connection.exec(rankCommand(spec.workdir, env, spec.argv, statusPath(spec.workdir, rank)))
          ranks[rank] = this.followChannel(rank, node, connection, this.cluster.hosts[node]!, channel, options.onLine)
        }),
      ),
    )
    const refused = openings.find((result) => result.status === 'rejected')
    if (refused !== undefined) {
      for (const rank of ranks) rank?.channel.end()
      return failedJob(noProcesses, { ok: false, kind: 'infrastructure', retryable: true, message: `could not open an SSH channel: ${(refused.reason as Error).message}; nothing ran` })
    }

    // Every wrapper announces its group before anything runs; a channel that closes first never ran the program.
    let pgids: number[]
    try {
      pgids = await Promise.all(ranks.map((rank) => rank.pgid))
    } catch (error) {
      for (const rank of ranks) rank.channel.end()
      return failedJob(noProcesses, { ok: false, kind: 'infrastructure', retryable: true, message: `${(error as Error).message}; nothing ran` })
    }
    const processes = ranks.map((rank, i) => ({ hostIndex: rank.node, pgid: pgids[i]! }))
    const handle: JobHandle = { executor: 'ssh', cluster: this.cluster.name, processes: ranks.map((rank, i) => ({ host: hostLabel(rank.host), pgid: pgids[i]!, status: `${statusPath(spec.workdir, rank.rank)}.${pgids[i]!}` })) }
    try {
      await options.record(handle)
    } catch (error) {
      for (const rank of ranks) rank.channel.end()
      await this.killProcesses(processes)
      return failedJob(handle, { ok: false, kind: 'infrastructure', retryable: true, message: `the job could not be recorded (${(error as Error).message}); nothing ran` })
    }
    if (options.signal.aborted) {
      for (const rank of ranks) rank.channel.end()
      await this.killProcesses(processes)
      return failedJob(handle, { ok: false, kind: 'cancelled', retryable: false, message: 'cancelled before the job started; nothing ran' })
    }
    for (const rank of ranks) rank.channel.write('go\n')
    options.onProgress?.({ state: 'RUNNING', ranks: ranks.map((rank) => ({ rank: rank.rank, host: rank.host.host })) })

    return this.supervise(spec, handle, ranks, processes, connected.connections, options)
  }

  private validate(spec: JobSpec): string | undefined {
    if (spec.argv.length === 0) return 'the job has no command (empty argv)'
    if (!Number.isInteger(spec.nodes) || spec.nodes < 1) return `nodes must be a positive integer (got ${spec.nodes})`
    if (spec.nodes > this.cluster.hosts.length) return `the job asks for ${spec.nodes} nodes but cluster ${this.cluster.name} lists ${this.cluster.hosts.length} host(s)`
    if (!Number.isInteger(spec.tasksPerNode) || spec.tasksPerNode < 1) return `tasks_per_node must be a positive integer (got ${spec.tasksPerNode})`
    const badName = Object.keys(spec.env).find((name) => !ENV_NAME.test(name))
    if (badName !== undefined) return `environment variable name ${JSON.stringify(badName)} is not a valid name ([A-Za-z_][A-Za-z0-9_]*)`
    if ([...spec.argv, spec.workdir, ...Object.values(spec.env)].some((word) => word.includes('\0'))) return 'argv, env and workdir cannot contain NUL bytes'
    if (spec.workdir === '') return 'the job has no workdir'
    const badArtifact = spec.artifacts.find((artifact) => path.posix.isAbsolute(artifact) || artifact.split('/').includes('..') || artifact === '')
    if (badArtifact !== undefined) return `artifact ${JSON.stringify(badArtifact)} must be a relative path inside rank 0's workdir`
    return undefined
  }

  private followChannel(rank: number, node: number, connection: SshConnection, host: SshHostSetting, channel: ClientChannel, onLine: (line: RankLine) => unknown): Rank {
    let resolvePgid!: (pgid: number) => void
    let rejectPgid!: (error: Error) => void
    const pgid = new Promise<number>((resolve, reject) => {
      resolvePgid = resolve
      rejectPgid = reject
    })
    pgid.catch(() => {})
    let announced = false
    let detaching = false
    let confirmDetach: (() => void) | undefined
    const detached = new Promise<void>((resolve) => (confirmDetach = resolve))
    const label = hostLabel(host)
    const stdout = readLines(channel, (line) => {
      if (detaching && line === 'cairn-detached') {
        confirmDetach?.()
        return
      }
      if (!announced) {
        const match = /^cairn-pgid (\d+)$/.exec(line)
        if (match !== null) {
          announced = true
          resolvePgid(Number(match[1]))
          return
        }
        // Anything before the announcement comes from the remote login (a shell startup file): pass it on.
      }
      return onLine({ rank, host: host.host, stream: 'stdout', line })
    })
    const stderr = readLines(channel.stderr, (line) => onLine({ rank, host: host.host, stream: 'stderr', line }))
    const exit = new Promise<{ code: number | null; signal?: string; lost?: boolean }>((resolve) => {
      let status: { code: number | null; signal?: string; lost?: boolean } = { code: null, lost: true }
      channel.on('exit', (code: number | null, signal?: string) => {
        status = code === null ? { code: null, signal } : { code }
      })
      channel.on('close', () => {
        if (!announced) rejectPgid(new Error(`rank ${rank} on ${label} ended before it started (is sh and setsid available there?)`))
        resolve(status)
      })
    })
    const detach = async (timeoutMs: number): Promise<boolean> => {
      detaching = true
      if (channel.writable) channel.write('detach\n')
      let timer: NodeJS.Timeout | undefined
      const answered = await Promise.race([detached.then(() => true), exit.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)))])
      clearTimeout(timer)
      return answered
    }
    return { rank, node, connection, host, channel, pgid, exit, output: Promise.all([stdout, stderr]).then(() => {}), detach }
  }

  private supervise(spec: JobSpec, handle: JobHandle, ranks: Rank[], processes: { hostIndex: number; pgid: number }[], connections: SshConnection[], options: StartOptions): RunningJob {
    let stopping: { kind: 'cancelled' | 'timeout' | 'exit_code' | 'infrastructure'; message: string; exitCode?: number } | undefined
    let killing: Promise<{ ok: boolean; message?: string }> | undefined
    const stopAll = () => (killing ??= this.killProcesses(processes))

    const cancel = async (reason: 'cancelled' | 'timeout') => {
      stopping ??= { kind: reason, message: reason === 'timeout' ? 'the task timed out; every rank was stopped' : 'cancelled; every rank was stopped' }
      const result = await stopAll()
      if (!result.ok) throw new Error(`could not confirm that every rank stopped: ${result.message}`)
    }
    // A worker shutting down with keepJobsOnShutdown leaves the ranks running for the worker that re-attaches.
    let detached: Promise<JobOutcome> | undefined
    const detach = (): Promise<JobOutcome> =>
      (detached ??= (async (): Promise<JobOutcome> => {
        stopping ??= { kind: 'infrastructure', message: 'the worker shut down; the ranks keep running and are re-attached from the handle' }
        const answers = await Promise.all(ranks.map((rank) => rank.detach(5_000)))
        options.signal.removeEventListener('abort', onAbort)
        const unconfirmed = ranks.filter((_, i) => !answers[i]).map((rank) => rank.rank)
        return {
          ok: false,
          kind: 'infrastructure',
          retryable: true,
          message: unconfirmed.length === 0 ? stopping.message : `${stopping.message}; rank(s) ${unconfirmed.join(', ')} did not confirm (ended meanwhile, or stopped by their watchdog)`,
        }
      })())
    const onAbort = (): void => {
      const cause = (options.signal.reason as { cause?: unknown } | undefined)?.cause
      if (cause === 'shutdown' && this.keepJobsOnShutdown && stopping === undefined) void detach()
      else void cancel(cause === 'timeout' ? 'timeout' : 'cancelled').catch(() => {})
    }
    options.signal.addEventListener('abort', onAbort, { once: true })

    const dropListeners = [...new Set(connections)].map((connection) =>
      connection.onClose((error) => {
        if (stopping !== undefined) return
        stopping = {
          kind: 'infrastructure',
          message: `the SSH connection to ${hostLabel(connection.host)} was lost${error ? ` (${error.message})` : ''}; its ranks are stopped by their hang-up watchdog, the other hosts' ranks were stopped`,
        }
        void stopAll()
      }),
    )

    const exits = ranks.map((rank) =>
      rank.exit.then((status) => {
        if (stopping === undefined && status.lost === true) {
          stopping = { kind: 'infrastructure', message: `the SSH channel of rank ${rank.rank} on ${hostLabel(rank.host)} closed without an exit status (connection lost); its ranks are stopped by their hang-up watchdog, the other hosts' ranks were stopped` }
          void stopAll()
        } else if (stopping === undefined && status.code !== 0) {
          stopping = {
            kind: 'exit_code',
            exitCode: status.code ?? undefined,
            message: status.code === null ? `rank ${rank.rank} on ${rank.host.host} was killed by ${status.signal ?? 'a signal'}` : `rank ${rank.rank} on ${rank.host.host} exited with code ${status.code}`,
          }
          void stopAll()
        }
        rank.channel.end()
        return status
      }),
    )

    const ended = (async (): Promise<JobOutcome> => {
      await Promise.all(exits)
      await Promise.all(ranks.map((rank) => rank.output))
      options.signal.removeEventListener('abort', onAbort)
      for (const remove of dropListeners) remove()
      if (killing !== undefined) {
        const result = await killing
        if (!result.ok && stopping !== undefined) stopping.message += `; could not confirm that every rank stopped: ${result.message}`
      }
      if (stopping !== undefined) {
        return { ok: false, kind: stopping.kind, retryable: stopping.kind !== 'cancelled', message: stopping.message, ...(stopping.exitCode !== undefined ? { exitCode: stopping.exitCode } : {}) }
      }
      try {
        const artifacts = await this.fetchArtifacts(connections[0]!, spec)
        return { ok: true, artifacts }
      } catch (error) {
        return { ok: false, kind: 'infrastructure', retryable: true, message: `fetching the artifacts from rank 0 on ${hostLabel(this.cluster.hosts[0]!)} failed: ${(error as Error).message}` }
      }
    })()
    // Detached: the job is over for this worker although its ranks run on.
    let onDetach!: (outcome: JobOutcome) => void
    const detachedOutcome = new Promise<JobOutcome>((resolve) => (onDetach = resolve))
    const done = Promise.race([ended, detachedOutcome])
    const watchDetach = (): void => void detached?.then(onDetach)
    options.signal.addEventListener('abort', watchDetach, { once: true })
    if (options.signal.aborted) {
      onAbort()
      watchDetach()
    }
    void ended.then((outcome) => {
      options.signal.removeEventListener('abort', watchDetach)
      // A detached job runs on: its state is the next worker's to tell.
      if (detached === undefined) options.onProgress?.({ state: endedState(outcome) })
    })
    return { handle, done, cancel }
  }

  /** Copies spec.artifacts (files or folders, relative to rank 0's workdir) into spec.artifactsDir by SFTP. */
  private async fetchArtifacts(connection: SshConnection, spec: JobSpec): Promise<string[]> {
    if (spec.artifacts.length === 0) return []
    if (connection.closed) {
      const reconnected = await this.connect(0)
      if (!reconnected.ok) throw new Error(reconnected.message)
      connection = reconnected.connection
    }
    const sftp = await connection.sftp()
    const fetched: string[] = []
    try {
      for (const artifact of spec.artifacts) await fetchRemote(sftp, path.posix.join(spec.workdir, artifact), artifact, spec.artifactsDir, fetched)
    } finally {
      sftp.end()
    }
    return fetched
  }

  /** Follows ranks started earlier from their recorded pgids (ssh-reattach.ts). */
  reattach(handle: JobHandle, options: ReattachOptions): Promise<RunningJob> {
    return reattachSshJob(this.reattachHost(), handle, options)
  }

  private reattachHost(): ReattachHost {
    return {
      cluster: this.cluster,
      followIntervalMs: this.followIntervalMs,
      keepJobsOnShutdown: this.keepJobsOnShutdown,
      connect: (index) => this.connect(index),
      connectAll: (indexes) => this.connectAll(indexes),
      killProcesses: (processes) => this.killProcesses(processes),
      fetchArtifacts: (connection, spec) => this.fetchArtifacts(connection, spec),
    }
  }
}

export function createSshExecutor(cluster: SshClusterSetting, options: SshExecutorOptions = {}): SshExecutor {
  return new SshExecutor(cluster, options)
}
