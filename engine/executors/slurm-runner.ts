/**
 * Where the Slurm commands run and the job's files are read and written (a slurm cluster's `submit`):
 *   - local: sbatch, squeue, ... on this machine (execFile, argv, no shell), the job's files through the file
 *     system (the cluster's workdir is shared with this machine);
 *   - ssh: on a login node, over one ssh2 connection (ssh-pool.ts: key authentication, the host key checked
 *     against known_hosts, Nagle off), each command an argv whose every word is single-quoted
 *     (shell-quote.ts); the environment the commands need there (`submit.env`, e.g. SLURM_CONF) is passed as
 *     `env NAME=value` words. The job's files are read and written over SFTP on the same connection.
 * A command that cannot run (connection refused or dropped, a timeout) comes back as exit code -1 with a
 * message naming the host; the next command connects again.
 */
import { execFile } from 'node:child_process'
import { copyFile, mkdir, open, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { SFTPWrapper } from 'ssh2'
import { shellQuoteArgv } from './shell-quote.ts'
import { fetchRemote, sftpMkdirP, sftpReadAt, sftpStat, sftpWriteFile } from './sftp-files.ts'
import type { SshConnection, SshHostSetting } from './ssh-connection.ts'
import { SshConnectionPool } from './ssh-pool.ts'

export interface CommandResult {
  /** The command's exit code; -1 when it could not run or its end is unknown (see stderr). */
  code: number
  stdout: string
  stderr: string
  /** The login node could not be reached at all (nothing ran); `hostKeyRefused`: because of its host key. */
  unreachable?: { hostKeyRefused: boolean }
}

/** The job's files on the cluster's shared file system, as seen from where the Slurm commands run. */
export interface SlurmFileAccess {
  /** Creates `dir` (and its parents) and writes the files into it, each new, with its mode. */
  writeFiles(dir: string, files: readonly { path: string; text: string; mode: number }[]): Promise<void>
  /** The file's size; undefined when it does not exist (yet). */
  size(file: string): Promise<number | undefined>
  /** Up to `length` bytes from `position`. */
  readAt(file: string, position: number, length: number): Promise<Buffer>
  /** Copies `file` (a file, or over SSH also a folder) to `local`. */
  fetch(file: string, local: string): Promise<void>
}

export interface SlurmRunner {
  /** Where the commands run, for messages: "this machine" or "the login node NAME (user@host:port)". */
  readonly where: string
  /** The cluster endpoint (one watcher per key in a process). */
  readonly key: string
  readonly files: SlurmFileAccess
  run(command: string, args: readonly string[], timeoutMs: number): Promise<CommandResult>
  /** Releases the connection when nothing is using it (the next command connects again). */
  closeIdle(): Promise<void>
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** The login node could not be reached (nothing was done there); `hostKeyRefused`: because of its host key. */
export class UnreachableError extends Error {
  readonly hostKeyRefused: boolean
  constructor(message: string, hostKeyRefused: boolean) {
    super(message)
    this.hostKeyRefused = hostKeyRefused
  }
}

/** Checks `submit.env`: names of letters, digits and _, values without NUL; the first problem is returned. */
export function checkSubmitEnv(env: Readonly<Record<string, unknown>> | undefined): string | undefined {
  for (const [name, value] of Object.entries(env ?? {})) {
    if (!ENV_NAME.test(name)) return `submit.env: ${JSON.stringify(name)} is not a valid environment variable name`
    if (typeof value !== 'string' || value.includes('\0')) return `submit.env.${name} must be a string without NUL bytes`
  }
  return undefined
}

export class LocalSlurmRunner implements SlurmRunner {
  readonly where = 'this machine'
  readonly key: string
  private readonly env: NodeJS.ProcessEnv

  constructor(env: NodeJS.ProcessEnv, name: string | null = null) {
    this.env = env
    this.key = `local\0${name ?? ''}\0${env.SLURM_CONF ?? ''}`
  }

  run(command: string, args: readonly string[], timeoutMs: number): Promise<CommandResult> {
    return new Promise((resolve) => {
      execFile(command, args, { env: this.env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : -1
        resolve({ code, stdout, stderr: error !== null && stderr === '' ? error.message : stderr })
      })
    })
  }

  readonly files: SlurmFileAccess = {
    writeFiles: async (dir, files) => {
      await mkdir(dir, { recursive: true })
      for (const file of files) await writeFile(file.path, file.text, { mode: file.mode })
    },
    size: (file) => stat(file).then((s) => s.size, () => undefined),
    readAt: async (file, position, length) => {
      const handle = await open(file, 'r')
      try {
        const buffer = Buffer.alloc(length)
        const { bytesRead } = await handle.read(buffer, 0, length, position)
        return buffer.subarray(0, bytesRead)
      } finally {
        await handle.close()
      }
    },
    fetch: async (file, local) => {
      await mkdir(path.dirname(local), { recursive: true })
      await copyFile(file, local)
    },
  }

  async closeIdle(): Promise<void> {}
}

export interface SshRunnerOptions {
  /** The cluster's name in cairn.yaml (part of the watcher's key). */
  clusterName?: string | null
  /** The name of the `ssh_hosts` entry (for messages and the watcher's key). */
  hostName: string
  host: SshHostSetting
  /** `submit.env`: set for every Slurm command on the login node. */
  env?: Readonly<Record<string, string>>
  connectTimeoutMs?: number
  /** A connection nothing used for this long is closed. @default 60000 */
  idleMs?: number
}

export class SshSlurmRunner implements SlurmRunner {
  readonly where: string
  readonly key: string
  private readonly envWords: string[]
  private readonly pool: SshConnectionPool
  private readonly idleMs: number
  /** Operations in flight (commands, SFTP). */
  private busy = 0
  private idleTimer: NodeJS.Timeout | undefined
  private sftp: { connection: SshConnection; session: Promise<SFTPWrapper> } | undefined

  constructor(options: SshRunnerOptions) {
    const host = options.host
    this.where = `the login node ${options.hostName} (${host.user}@${host.host}:${host.port ?? 22})`
    this.envWords = Object.entries(options.env ?? {}).map(([name, value]) => `${name}=${value}`)
    this.key = ['ssh', options.clusterName ?? '', options.hostName, `${host.user}@${host.host}:${host.port ?? 22}`, host.identity_file ?? '', host.known_hosts_file ?? '', ...this.envWords].join('\0')
    this.pool = new SshConnectionPool([host], host.known_hosts_file, options.connectTimeoutMs ?? 20_000)
    this.idleMs = options.idleMs ?? 60_000
  }

  /** Counts an operation in flight; the connection is closed after `idleMs` without any. */
  private async using<T>(work: () => Promise<T>): Promise<T> {
    this.busy++
    clearTimeout(this.idleTimer)
    try {
      return await work()
    } finally {
      this.busy--
      if (this.busy === 0) {
        this.idleTimer = setTimeout(() => void this.closeIdle(), this.idleMs)
        this.idleTimer.unref()
      }
    }
  }

  private async connection(): Promise<{ ok: true; connection: SshConnection } | { ok: false; hostKeyRefused: boolean; message: string }> {
    const connected = await this.pool.connect(0)
    return connected.ok ? connected : { ok: false, hostKeyRefused: connected.hostKeyRefused, message: connected.message }
  }

  run(command: string, args: readonly string[], timeoutMs: number): Promise<CommandResult> {
    return this.using(async () => {
      const connected = await this.connection()
      if (!connected.ok) return { code: -1, stdout: '', stderr: `cannot reach ${this.where}: ${connected.message}`, unreachable: { hostKeyRefused: connected.hostKeyRefused } }
      const words = this.envWords.length > 0 ? ['env', ...this.envWords, command, ...args] : [command, ...args]
      try {
        const result = await connected.connection.run(shellQuoteArgv(words), { timeoutMs })
        if (result.timedOut === true) return { code: -1, stdout: result.stdout, stderr: `${command} on ${this.where} did not answer within ${timeoutMs} ms${result.stderr !== '' ? `: ${result.stderr.trim()}` : ''}` }
        if (result.code === null) {
          const why = connected.connection.closed ? 'the SSH connection was lost before it ended' : `it was killed by ${result.signal ?? 'a signal'}`
          return { code: -1, stdout: result.stdout, stderr: `${command} on ${this.where}: ${why}${result.stderr !== '' ? `: ${result.stderr.trim()}` : ''}` }
        }
        return { code: result.code, stdout: result.stdout, stderr: result.stderr }
      } catch (error) {
        return { code: -1, stdout: '', stderr: `${command} on ${this.where} could not be started: ${(error as Error).message}` }
      }
    })
  }

  /** The SFTP session of the current connection (a new one after a reconnect). */
  private async session(): Promise<SFTPWrapper> {
    const connected = await this.connection()
    if (!connected.ok) throw new UnreachableError(`cannot reach ${this.where}: ${connected.message}`, connected.hostKeyRefused)
    if (this.sftp === undefined || this.sftp.connection !== connected.connection) {
      const session = connected.connection.sftp()
      this.sftp = { connection: connected.connection, session }
      session.catch(() => {
        if (this.sftp?.session === session) this.sftp = undefined
      })
    }
    return this.sftp.session
  }

  private sftpOp<T>(what: string, work: (sftp: SFTPWrapper) => Promise<T>): Promise<T> {
    return this.using(async () => {
      try {
        return await work(await this.session())
      } catch (error) {
        if (error instanceof UnreachableError) throw error
        throw new Error(`${what} over SFTP on ${this.where}: ${(error as Error).message}`)
      }
    })
  }

  readonly files: SlurmFileAccess = {
    writeFiles: (dir, files) =>
      this.sftpOp('writing the job script', async (sftp) => {
        await sftpMkdirP(sftp, dir)
        for (const file of files) await sftpWriteFile(sftp, file.path, file.text, file.mode)
      }),
    size: (file) => this.sftpOp('reading the job output', async (sftp) => (await sftpStat(sftp, file))?.size),
    readAt: (file, position, length) => this.sftpOp('reading the job output', (sftp) => sftpReadAt(sftp, file, position, length)),
    fetch: (file, local) =>
      this.sftpOp('fetching an artifact', async (sftp) => {
        await fetchRemote(sftp, file, path.basename(local), path.dirname(local), [])
      }),
  }

  async closeIdle(): Promise<void> {
    if (this.busy > 0) return
    clearTimeout(this.idleTimer)
    this.sftp = undefined
    await this.pool.close()
  }
}
