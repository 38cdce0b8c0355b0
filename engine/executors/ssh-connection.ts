/**
 * One ssh2 connection to one host: key authentication, the host key checked against known_hosts before
 * anything is sent, Nagle off (`setNoDelay(true)`: an exec round trip of ~4 ms instead of ~90 ms), and small
 * helpers to run a command and collect its output. Commands are strings for the remote login shell; callers
 * build them with shell-quote.ts only.
 */
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import path from 'node:path'
import { Client, type ClientChannel, type SFTPWrapper } from 'ssh2'
import { checkHostKey } from './known-hosts.ts'

export interface SshHostSetting {
  host: string
  port?: number
  user: string
  identity_file?: string
  known_hosts_file?: string
  address?: string
}

export type ConnectResult = { ok: true; connection: SshConnection } | { ok: false; hostKeyRefused: boolean; message: string }

export function expandHome(file: string): string {
  return file === '~' ? homedir() : file.startsWith('~/') ? path.join(homedir(), file.slice(2)) : file
}

export class SshConnection {
  readonly client: Client
  readonly host: SshHostSetting
  closed = false
  private readonly closeListeners = new Set<(error?: Error) => void>()

  constructor(client: Client, host: SshHostSetting) {
    this.client = client
    this.host = host
    const onEnd = (error?: Error) => {
      if (this.closed) return
      this.closed = true
      for (const listener of this.closeListeners) listener(error)
    }
    client.on('close', () => onEnd())
    client.on('error', (error) => onEnd(error))
  }

  /** Called once when the connection ends or fails (immediately when it already has). */
  onClose(listener: (error?: Error) => void): () => void {
    if (this.closed) {
      queueMicrotask(() => listener())
      return () => {}
    }
    this.closeListeners.add(listener)
    return () => this.closeListeners.delete(listener)
  }

  exec(command: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error(`the SSH connection to ${this.host.host} is closed`))
      this.client.exec(command, (error, channel) => (error ? reject(error) : resolve(channel)))
    })
  }

  /**
   * Runs a command to its end and returns its exit code and output (for short control commands). `stdin` is
   * written to the command's standard input; past `timeoutMs` the channel is closed and `timedOut` set. A
   * channel that closes without an exit status (its connection dropped) has code null and no signal.
   */
  async run(command: string, options: { timeoutMs?: number; stdin?: string | Buffer } = {}): Promise<{ code: number | null; signal?: string; stdout: string; stderr: string; timedOut?: boolean }> {
    const channel = await this.exec(command)
    let stdout = ''
    let stderr = ''
    channel.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    channel.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    return new Promise((resolve) => {
      let code: number | null = null
      let signal: string | undefined
      let timedOut = false
      const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
        timedOut = true
        channel.close()
      }, options.timeoutMs)
      channel.on('exit', (exitCode: number | null, exitSignal?: string) => {
        code = exitCode
        signal = exitSignal
      })
      channel.on('close', () => {
        clearTimeout(timer)
        resolve({ code, signal, stdout, stderr, ...(timedOut ? { timedOut } : {}) })
      })
      channel.end(options.stdin)
    })
  }

  /**
   * Whether something on the host's side accepts connections at address:port, asked through this
   * connection (the SSH server opens a direct-tcpip channel from the host; nothing runs there): true when
   * it connects, false when refused, undefined when the server allows no forwarding or gives no answer
   * within `timeoutMs`.
   */
  listening(address: string, port: number, timeoutMs = 5000): Promise<boolean | undefined> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(undefined)
      const timer = setTimeout(() => resolve(undefined), timeoutMs)
      this.client.forwardOut('127.0.0.1', 0, address, port, (error, channel) => {
        clearTimeout(timer)
        if (!error) {
          channel.close()
          return resolve(true)
        }
        // SSH_OPEN_CONNECT_FAILED: the host could not connect, so nothing listens there.
        resolve((error as Error & { reason?: unknown }).reason === 2 ? false : undefined)
      })
    })
  }

  sftp(): Promise<SFTPWrapper> {
    return new Promise((resolve, reject) => this.client.sftp((error, sftp) => (error ? reject(error) : resolve(sftp))))
  }

  close(): void {
    this.client.end()
  }
}

/**
 * Connects and authenticates. A host key that known_hosts does not list, or lists with another key, ends the
 * handshake before authentication: nothing is sent, and the message names the host and the fingerprint.
 */
export async function connectSsh(host: SshHostSetting, fallbackKnownHosts: string | undefined, timeoutMs = 20_000): Promise<ConnectResult> {
  const port = host.port ?? 22
  const knownHostsFile = expandHome(host.known_hosts_file ?? fallbackKnownHosts ?? '~/.ssh/known_hosts')
  let knownHosts: string
  try {
    knownHosts = await readFile(knownHostsFile, 'utf8')
  } catch (error) {
    return { ok: false, hostKeyRefused: true, message: `cannot read the known_hosts file ${knownHostsFile} for ${host.host}:${port}: ${(error as Error).message}; unknown host keys are never accepted` }
  }
  let privateKey: Buffer | undefined
  if (host.identity_file !== undefined) {
    try {
      privateKey = await readFile(expandHome(host.identity_file))
    } catch (error) {
      return { ok: false, hostKeyRefused: false, message: `cannot read the identity file ${host.identity_file} for ${host.host}: ${(error as Error).message}` }
    }
  }
  const agent = privateKey === undefined ? process.env.SSH_AUTH_SOCK : undefined
  if (privateKey === undefined && agent === undefined) {
    return { ok: false, hostKeyRefused: false, message: `no identity_file for ${host.user}@${host.host} and no SSH agent (SSH_AUTH_SOCK) to authenticate with` }
  }

  const client = new Client()
  // Errors after the outcome is settled (a refused handshake tearing down) must not become uncaught.
  client.on('error', () => {})
  let refusal: string | undefined
  return new Promise((resolve) => {
    let settled = false
    const settle = (result: ConnectResult) => {
      if (settled) return
      settled = true
      if (!result.ok) client.end()
      resolve(result)
    }
    client.once('ready', () => settle({ ok: true, connection: new SshConnection(client, host) }))
    client.once('error', (error) => {
      if (refusal !== undefined) settle({ ok: false, hostKeyRefused: true, message: refusal })
      else settle({ ok: false, hostKeyRefused: false, message: `SSH connection to ${host.user}@${host.host}:${port} failed: ${error.message}` })
    })
    client.once('close', () => settle({ ok: false, hostKeyRefused: refusal !== undefined, message: refusal ?? `SSH connection to ${host.user}@${host.host}:${port} closed during the handshake` }))
    client.connect({
      host: host.host,
      port,
      username: host.user,
      privateKey,
      agent,
      readyTimeout: timeoutMs,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      hostVerifier: (key: Buffer) => {
        const verdict = checkHostKey(knownHosts, host.host, port, key, knownHostsFile)
        if (!verdict.ok) refusal = verdict.message
        return verdict.ok
      },
    })
    client.setNoDelay(true)
  })
}
