/**
 * The long-running commands: `up` (everything in one process), `scheduler`, `worker` and `web` (the
 * parts alone, for many machines sharing one Postgres). Each runs until SIGINT/SIGTERM, then stops in
 * order: the web server stops taking requests and the scheduler ends its pass (no new runs while the
 * workers drain), workers drain, the queue and database close, the embedded Postgres stops. A second
 * signal cuts the drain short (running attempts are handed back); every step has a time limit.
 */
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { PgBoss } from 'pg-boss'
import { LOG_FORMATS, chooseLogFormat, createLogger } from '../log.ts'
import type { Logger } from '../log.ts'
import { deploymentNames, loadConfig } from '../config/load-config.ts'
import { retentionSettings } from '../config/retention.ts'
import { dataSettings } from '../config/data-settings.ts'
import type { LoadedConfig } from '../config/load-config.ts'
import { formatDiagnostic } from '../dag/diagnostics.ts'
import { openOwnedDatabase, openSharedDatabase } from '../runtime/connect.ts'
import type { Connection } from '../runtime/connect.ts'
import { syncPools } from '../runtime/pools.ts'
import { DEFAULT_QUEUE, startBoss } from '../queue/task-queue.ts'
import { startScheduler } from '../scheduler/scheduler.ts'
import type { Scheduler } from '../scheduler/scheduler.ts'
import { startWorker } from '../worker/worker.ts'
import { DEFAULT_MAX_LOG_BYTES } from '../worker/log-writer.ts'
import { parseSize } from '../config/sizes.ts'
import type { Worker } from '../worker/worker.ts'
import { createSecretStore } from '../secrets/secrets.ts'
import { takeSecretVariables } from '../secrets/secret-env.ts'
import { resolveTaskUser } from '../process/task-user.ts'
import type { TaskUser } from '../process/task-user.ts'
import { securePrivateState } from '../runtime/private-state.ts'
import { startWeb } from '../web/server.ts'
import type { RunningWeb } from '../web/server.ts'
import { hasActiveAdmin } from '../web/auth/users.ts'
import { startServe } from '../serve/start-serve.ts'
import type { RunningServe } from '../serve/start-serve.ts'
import { parseChoice, parsePositiveInt } from './args.ts'
import { EXIT, UsageError } from './io.ts'
import { plural, watchStopSignals, withinTime } from './shutdown.ts'
import type { CommandIo, ExitCode } from './io.ts'

type Part = 'scheduler' | 'worker' | 'web' | 'serve'

const OPTIONS = {
  slots: { type: 'string' },
  /** A queue the worker takes tasks from (repeatable), overriding workers.queues. */
  queue: { type: 'string', multiple: true },
  grace: { type: 'string', default: '30' },
  /** Seconds between a worker's heartbeats. */
  heartbeat: { type: 'string', default: '2' },
  /** Seconds without a heartbeat after which the scheduler declares an attempt lost. */
  'lost-after': { type: 'string', default: '30' },
  /** Web port, overriding CAIRN_PORT and web.port (0: any free port); for `serve`, the model server's port. */
  port: { type: 'string' },
  /** Model server port, overriding CAIRN_SERVE_PORT and serve.port (0: any free port). */
  'serve-port': { type: 'string' },
  /** pretty or json; default pretty when stderr is a terminal. */
  'log-format': { type: 'string' },
} as const

export const upCommand = (args: string[], io: CommandIo): Promise<ExitCode> => runParts(['scheduler', 'worker', 'web', 'serve'], args, io, true)
export const schedulerCommand = (args: string[], io: CommandIo): Promise<ExitCode> => runParts(['scheduler'], args, io, false)
export const workerCommand = (args: string[], io: CommandIo): Promise<ExitCode> => runParts(['worker'], args, io, false)
export const webCommand = (args: string[], io: CommandIo): Promise<ExitCode> => runParts(['web'], args, io, false)
export const serveCommand = (args: string[], io: CommandIo): Promise<ExitCode> => runParts(['serve'], args, io, false)

async function runParts(parts: Part[], args: string[], io: CommandIo, owner: boolean): Promise<ExitCode> {
  const { values } = parseArgs({ args, options: OPTIONS })
  const { settings } = io
  const format = chooseLogFormat(parseChoice('--log-format', values['log-format'], LOG_FORMATS), io.stderrIsTTY === true)
  // Colours only on a terminal, and never against NO_COLOR (https://no-color.org).
  const log = createLogger({ level: settings.logLevel, format, colorize: io.stderrIsTTY === true && !settings.env.NO_COLOR })
  const config = loadConfig(settings.configPath, settings.cwd)
  if (!config.ok) {
    for (const d of config.diagnostics) io.stderr(formatDiagnostic(d))
    io.stderr(`cairn: ${settings.configPath} is not valid; fix it and start again`)
    return EXIT.failed
  }
  const slots = values.slots !== undefined ? Number(values.slots) : workerSlots(config)
  const graceMs = seconds(values.grace, '--grace')
  const heartbeatMs = seconds(values.heartbeat, '--heartbeat')
  const lostAfterMs = seconds(values['lost-after'], '--lost-after')
  if (!Number.isInteger(slots) || slots < 1) throw new UsageError('--slots must be a whole number >= 1')
  const onlyServe = parts.length === 1 && parts[0] === 'serve'
  const port = onlyServe ? undefined : values.port === '0' ? 0 : parsePositiveInt('--port', values.port, 65535)
  // `up --port 0` (any free port) takes any free port for its model server too, unless told otherwise.
  const servePortFlag = onlyServe ? values.port : (values['serve-port'] ?? (values.port === '0' ? '0' : undefined))
  const servePort = servePortFlag === '0' ? 0 : parsePositiveInt(onlyServe ? '--port' : '--serve-port', servePortFlag, 65535)
  const queues = values.queue && values.queue.length > 0 ? values.queue : workerQueues(config)
  for (const queue of queues) if (!QUEUE_NAME.test(queue)) throw new UsageError(`--queue ${JSON.stringify(queue)}: a queue name is lowercase letters, digits, _ and -, starting with a letter (at most 64)`)

  // Tasks' user and cairn's private files are settled before anything starts; a wrong run_as stops here.
  let taskUser: TaskUser | undefined
  let secretEnv: Readonly<Record<string, string>> = {}
  if (parts.includes('worker')) {
    try {
      taskUser = await resolveTaskUser(workerRunAs(config), log)
      await securePrivateState(settings.home, secretsDir(config, settings.cwd).dir, taskUser, log)
    } catch (error) {
      io.stderr(`cairn: ${error instanceof Error ? error.message : String(error)}`)
      return EXIT.usage
    }
  }
  if (parts.includes('worker') || parts.includes('web')) {
    // In the CLI settings.env is the process environment: the values move into memory only.
    secretEnv = takeSecretVariables(settings.env as Record<string, string | undefined>)
  }

  // Listening from the start: a Ctrl-C while Postgres starts must still stop it (it runs in its own process group).
  let connection: Connection | undefined
  let worker: Worker | undefined
  const signals = watchStopSignals({
    onUrgent: () => {
      const n = worker?.runningCount() ?? 0
      io.stderr(n > 0 ? `cairn: stopping now: handing back ${plural(n, 'running task')}` : 'cairn: stopping now')
    },
    onForce: () => {
      io.stderr('cairn: stopping at once (running tasks will be retried once their attempts are declared lost)')
      connection?.embedded?.kill()
      process.exit(EXIT.failed)
    },
  })
  try {
    try {
      connection = owner ? await openOwnedDatabase(settings, log) : await openSharedDatabase(settings, log, { migrate: true })
    } catch (error) {
      io.stderr(`cairn: ${error instanceof Error ? error.message : String(error)}`)
      return EXIT.usage
    }
    const conn = connection
    const { db } = conn
    let boss: PgBoss | undefined
    let scheduler: Scheduler | undefined
    let web: RunningWeb | undefined
    let serve: RunningServe | undefined
    try {
      // Pool sizes are the scheduler's to publish: a worker started without cairn.yaml must not erase them.
      if (parts.includes('scheduler')) await syncPools(db, config.config)
      if (!signals.stopping && (parts.includes('scheduler') || parts.includes('worker'))) boss = await startBoss({ url: conn.url, log })
      if (!signals.stopping && parts.includes('scheduler')) {
        scheduler = await startScheduler({ db, boss: boss!, log, dagsFolder: resolve(settings.cwd, settings.dagsFolder), cwd: settings.cwd, names: deploymentNames(config.config), lostAfterMs, retention: retentionSettings(config.config) })
      }
      if (!signals.stopping && parts.includes('worker')) {
        worker = await startWorker({
          db,
          boss: boss!,
          log,
          slots,
          queues,
          workRoot: join(settings.home, 'work'),
          secrets: createSecretStore({ env: secretEnv, ...secretsDir(config, settings.cwd) }),
          ...(taskUser ? { taskUser } : {}),
          workerEnv: settings.env,
          heartbeatMs,
          maxLogBytes: workerMaxLogBytes(config),
          data: dataSettings(config.config, { cwd: settings.cwd, home: settings.home, dagsFolder: settings.dagsFolder }),
        })
      }
      if (!signals.stopping && parts.includes('web')) {
        try {
          web = await startWeb({ db, log, settings, config: config.config, secrets: { env: secretEnv, ...secretsDir(config, settings.cwd) }, ...(port !== undefined ? { port } : {}) })
        } catch (error) {
          const code = (error as { code?: unknown }).code
          io.stderr(`cairn: the web server cannot start: ${error instanceof Error ? error.message : String(error)}${code === 'EADDRINUSE' ? ' (set CAIRN_PORT or --port to another port)' : ''}`)
          return EXIT.usage
        }
      }
      if (!signals.stopping && parts.includes('serve')) {
        try {
          serve = await startServe({ db, log, settings, config: config.config, ...(servePort !== undefined ? { port: servePort } : {}) })
        } catch (error) {
          const code = (error as { code?: unknown }).code
          io.stderr(`cairn: the model server cannot start: ${error instanceof Error ? error.message : String(error)}${code === 'EADDRINUSE' ? ' (set CAIRN_SERVE_PORT or --serve-port to another port)' : ''}`)
          return EXIT.usage
        }
      }
      if (!signals.stopping) {
        announce(io, parts, settings.dagsFolder, conn, settings.home, web?.url, serve?.url)
        if (web && !(await hasActiveAdmin(db))) {
          io.stdout('  no admin user yet; create one (in this folder, while cairn runs) with: npx cairn users create admin --role admin')
        }
      }
      await signals.requested
      const n = worker?.runningCount() ?? 0
      io.stderr(n > 0 ? `cairn: stopping: waiting up to ${values.grace} s for ${plural(n, 'running task')}; Ctrl-C again to stop now` : 'cairn: stopping…')
    } finally {
      await stopAll({ log, io, graceMs, urgent: signals.urgent, web, serve, worker, scheduler, boss, connection: conn })
    }
  } finally {
    signals.dispose()
  }
  io.stderr('cairn: stopped')
  return EXIT.ok
}

/** Time limits of the steps of a stop (the workers' drain has its own, from --grace). */
const STOP_LIMIT_MS = { web: 5000, serve: 10_000, scheduler: 15_000, queue: 5000, database: 5000, postgres: 45_000 }

interface StopContext {
  log: Logger
  io: CommandIo
  graceMs: number
  urgent: AbortSignal
  web: RunningWeb | undefined
  serve: RunningServe | undefined
  worker: Worker | undefined
  scheduler: Scheduler | undefined
  boss: PgBoss | undefined
  connection: Connection
}

/**
 * The scheduler stops first (no new runs while the workers drain), together with the web server;
 * then the workers drain, the queue and the database close, and the embedded Postgres stops.
 */
async function stopAll({ log, io, graceMs, urgent, web, serve, worker, scheduler, boss, connection }: StopContext): Promise<void> {
  const step = async (name: string, limitMs: number, fn: () => Promise<unknown>): Promise<void> => {
    try {
      if (!(await withinTime(limitMs, fn))) log.warn({ limitMs }, `stopping ${name} took too long; going on`)
    } catch (error) {
      log.warn({ err: error }, `stopping ${name} failed`)
    }
  }
  await Promise.all([
    web ? step('web', STOP_LIMIT_MS.web, () => closeWeb(web)) : undefined,
    // Requests being answered finish; then the figures are written and the sessions released.
    serve ? step('model server', STOP_LIMIT_MS.serve, () => serve.close()) : undefined,
    scheduler ? step('scheduler', STOP_LIMIT_MS.scheduler, () => scheduler.stop()) : undefined,
  ])
  if (worker) {
    await step('worker', graceMs + 60_000, async () => {
      const report = await worker.drain(graceMs, {
        urgent,
        onHandBack: (n) => {
          if (!urgent.aborted) io.stderr(`cairn: the grace period is over: handing back ${plural(n, 'running task')}`)
        },
      })
      if (report.unrecorded > 0) io.stderr(`cairn: the database is unreachable: ${plural(report.unrecorded, 'task result')} could not be recorded (those tasks will run again)`)
    })
  }
  if (boss) await step('queue', STOP_LIMIT_MS.queue, () => boss.stop({ graceful: false, close: true }))
  await step('database', STOP_LIMIT_MS.database, () => connection.db.close())
  if (connection.embedded) {
    const { embedded } = connection
    await step('embedded Postgres', STOP_LIMIT_MS.postgres, () => embedded.stop())
    if (embedded.running) {
      io.stderr('cairn: the embedded Postgres did not stop in time; killing it')
      embedded.kill()
    }
  }
  // A step that ran out of time may leave a handle open (a socket, a timer) that would keep the process alive.
  setTimeout(() => process.exit(), 2000).unref()
}

/** Fastify waits for open connections (log streams, the page's event stream) to end: cut them after a while. */
async function closeWeb(web: RunningWeb): Promise<void> {
  const closing = web.close()
  if (!(await withinTime(STOP_LIMIT_MS.web - 1000, () => closing))) web.app.server.closeAllConnections()
  await closing
}

function announce(io: CommandIo, parts: Part[], dags: string, connection: Connection, home: string, webUrl: string | undefined, serveUrl: string | undefined): void {
  const where = connection.embedded ? `embedded Postgres on port ${connection.embedded.port} (data in ${connection.embedded.dataDir})` : 'the Postgres of DATABASE_URL'
  io.stdout(`cairn ${parts.join(' + ')} running on ${where}`)
  if (parts.includes('scheduler')) io.stdout(`  DAGs from ${dags}/ (changes are picked up within seconds)`)
  if (webUrl) io.stdout(`  web on ${webUrl} (API under ${webUrl}api/v1, health at ${webUrl}healthz, metrics at ${webUrl}metrics)`)
  if (serveUrl) io.stdout(`  model server on ${serveUrl} (Open Inference Protocol under ${serveUrl}v2, metrics at ${serveUrl}metrics)`)
  io.stdout(`  state under ${home}`)
  io.stdout('  look at it with: npx cairn runs <dag>, npx cairn tasks <run>, npx cairn logs <run> <task> --follow')
  io.stdout('  stop with Ctrl-C')
}

function seconds(value: string | undefined, flag: string): number {
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number of seconds`)
  return n * 1000
}

function workerSlots(config: LoadedConfig): number {
  return config.config.workers?.concurrency ?? 4
}

/** The rule of a DAG's `queue:` and of workers.queues (schemas). */
const QUEUE_NAME = /^[a-z][a-z0-9_-]{0,63}$/

function workerQueues(config: LoadedConfig): string[] {
  return config.config.workers?.queues ?? [DEFAULT_QUEUE]
}

function workerRunAs(config: LoadedConfig): string | undefined {
  return config.config.workers?.run_as
}

function workerMaxLogBytes(config: LoadedConfig): number {
  const value = config.config.workers?.max_log_bytes
  return value === undefined ? DEFAULT_MAX_LOG_BYTES : parseSize(value)
}

function secretsDir(config: LoadedConfig, cwd: string): { dir?: string } {
  const dir = config.config.secrets?.dir
  return dir !== undefined ? { dir: resolve(cwd, dir) } : {}
}
