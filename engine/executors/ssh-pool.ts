/**
 * One ssh2 connection per host, shared by whoever talks to that host (the ssh executor's ranks, the Slurm
 * commands of a login node): a live connection is reused, a closed or failed one is replaced by a new one on
 * the next `connect`. Host keys are checked by connectSsh (ssh-connection.ts) on every new connection.
 */
import { connectSsh, type ConnectResult, type SshHostSetting } from './ssh-connection.ts'

export class SshConnectionPool {
  readonly hosts: readonly SshHostSetting[]
  private readonly knownHostsFile: string | undefined
  private readonly connectTimeoutMs: number
  /** By index in `hosts`. */
  private readonly connections = new Map<number, Promise<ConnectResult>>()

  /** `knownHostsFile`: the file of hosts that name none of their own. */
  constructor(hosts: readonly SshHostSetting[], knownHostsFile: string | undefined, connectTimeoutMs = 20_000) {
    this.hosts = hosts
    this.knownHostsFile = knownHostsFile
    this.connectTimeoutMs = connectTimeoutMs
  }

  /** The connection to host `index`, reusing a live one. */
  connect(index: number): Promise<ConnectResult> {
    const existing = this.connections.get(index)
    if (existing !== undefined) {
      return existing.then((result) => (result.ok && !result.connection.closed ? result : this.connections.get(index) !== existing ? this.connect(index) : this.newConnection(index)))
    }
    return this.newConnection(index)
  }

  /** Whether host `index` has a connection open (or being opened). */
  has(index: number): boolean {
    return this.connections.has(index)
  }

  private newConnection(index: number): Promise<ConnectResult> {
    const host = this.hosts[index]
    if (host === undefined) return Promise.resolve({ ok: false, hostKeyRefused: false, message: `no SSH host at index ${index}` })
    const pending = connectSsh(host, this.knownHostsFile, this.connectTimeoutMs)
    this.connections.set(index, pending)
    void pending.then((result) => {
      if (!result.ok && this.connections.get(index) === pending) this.connections.delete(index)
    })
    return pending
  }

  /** Closes every connection; the next `connect` opens a new one. */
  async close(): Promise<void> {
    const pending = [...this.connections.values()]
    this.connections.clear()
    for (const result of await Promise.all(pending)) if (result.ok) result.connection.close()
  }
}
