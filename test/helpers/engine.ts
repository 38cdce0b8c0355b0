/**
 * An engine for integration tests: a fresh database, a DAG folder written from strings, an
 * in-process scheduler (optional, with an injectable clock) and worker processes started as real
 * `cairn worker` child processes (or in-process workers when asked). Everything is stopped by the
 * test's `after` hook.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, parse } from 'node:path'
import type { PgBoss } from 'pg-boss'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { startBoss } from '../../engine/queue/task-queue.ts'
import { startScheduler } from '../../engine/scheduler/scheduler.ts'
import type { Scheduler, SchedulerOptions } from '../../engine/scheduler/scheduler.ts'
import { startWorker } from '../../engine/worker/worker.ts'
import type { Worker } from '../../engine/worker/worker.ts'
import { triggerRun } from '../../engine/store/control.ts'
import { createSecretStore } from '../../engine/secrets/secrets.ts'
import { resolveTaskUser } from '../../engine/process/task-user.ts'
import { syncPools } from '../../engine/runtime/pools.ts'
import { createTestDatabase, testLogger } from './postgres.ts'
import { dataSettings } from '../../engine/config/data-settings.ts'
import type { DataSettings } from '../../engine/config/data-settings.ts'
import type { CairnConfig } from '../../engine/config/load-config.ts'

const MAIN = new URL('../../engine/cli/main.ts', import.meta.url).pathname

export interface TestEngineOptions {
  /** File name (relative to the DAG folder) -> YAML text. */
  dags: Record<string, string>
  /** Start an in-process scheduler. @default true */
  scheduler?: boolean | Partial<Pick<SchedulerOptions, 'now' | 'loopMs' | 'lostAfterMs' | 'syncEveryMs'>>
  /** In-process workers to start. @default 0 (use spawnWorker for real processes) */
  inProcessWorkers?: number
  /** The clock of the in-process workers (heartbeats, `run.is_latest`); default the system clock. */
  workerNow?: () => Date
  /** Pool sizes, as cairn.yaml's `pools`. */
  pools?: Record<string, { slots: number }>
  /** cairn.yaml's `data` and `connections` for the in-process workers (home: `<dir>/home`). */
  config?: Pick<CairnConfig, 'data' | 'connections' | 'clusters' | 'model_servers'>
}

export interface TestEngine {
  db: Db
  url: string
  dir: string
  dagsFolder: string
  boss: PgBoss
  scheduler: Scheduler | undefined
  workers: Worker[]
  /** What the in-process workers' data operators use (datasets directory, allowed paths, connections). */
  data: DataSettings
  /** A real `cairn worker` process on this database; `args` are appended to its command line (e.g. `['--heartbeat', '0.5']`). */
  spawnWorker(options?: { slots?: number; env?: Record<string, string>; args?: string[] }): ChildProcess
  trigger(dagId: string, params?: Record<string, unknown>): Promise<string>
  waitForRun(runId: string, timeoutMs?: number): Promise<string>
  taskStates(runId: string): Promise<Record<string, string>>
  writeDag(name: string, text: string): void
}

export async function startTestEngine(t: { after(fn: () => Promise<void>): void }, options: TestEngineOptions): Promise<TestEngine> {
  const log = testLogger()
  const url = await createTestDatabase(t)
  const dir = mkdtempSync(join(tmpdir(), 'cairn-engine-test-'))
  const dagsFolder = join(dir, 'dags')
  mkdirSync(dagsFolder)
  const writeDag = (name: string, text: string): void => {
    mkdirSync(dirname(join(dagsFolder, name)), { recursive: true })
    writeFileSync(join(dagsFolder, name), text)
  }
  for (const [name, text] of Object.entries(options.dags)) writeDag(name, text)
  const db = createDb(url, { log, max: 8 })
  await migrate(db, log)
  await syncPools(db, { pools: options.pools ?? {} })
  const boss = await startBoss({ url, log })
  const children: ChildProcess[] = []
  const workers: Worker[] = []
  let scheduler: Scheduler | undefined
  t.after(async () => {
    for (const worker of workers) await worker.drain(2000).catch(() => undefined)
    await Promise.all(children.map((child) => stopChild(child)))
    await scheduler?.stop().catch(() => undefined)
    await boss.stop({ graceful: false, close: true }).catch(() => undefined)
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  })
  if (options.scheduler !== false) {
    const extra = typeof options.scheduler === 'object' ? options.scheduler : {}
    scheduler = await startScheduler({ db, boss, log, dagsFolder, cwd: dir, names: undefined, loopMs: 200, syncEveryMs: 200, ...extra })
  }
  // Tasks run as `cairn worker` would run them: as the unprivileged task user when the tests run as root.
  const data = dataSettings(options.config ?? {}, { cwd: dir, home: join(dir, 'home'), dagsFolder })
  const taskUser = (options.inProcessWorkers ?? 0) > 0 ? await resolveTaskUser(undefined, log) : undefined
  for (let i = 0; i < (options.inProcessWorkers ?? 0); i++) {
    workers.push(await startWorker({ db, boss, log, slots: 4, workRoot: join(dir, 'work'), secrets: createSecretStore({ env: {} }), ...(taskUser ? { taskUser } : {}), workerEnv: process.env, heartbeatMs: 500, data, ...(options.workerNow ? { now: options.workerNow } : {}) }))
  }

  return {
    db,
    url,
    dir,
    dagsFolder,
    boss,
    scheduler,
    workers,
    data,
    writeDag,
    spawnWorker(spawnOptions = {}) {
      const child = spawn(process.execPath, [MAIN, 'worker', '--slots', String(spawnOptions.slots ?? 4), '--grace', '5', ...(spawnOptions.args ?? [])], {
        cwd: dir,
        env: { ...process.env, DATABASE_URL: url, CAIRN_HOME: join(dir, 'home'), CAIRN_LOG_LEVEL: process.env.CAIRN_TEST_LOG || 'warn', ...spawnOptions.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      child.stdout?.resume()
      child.stderr?.on('data', (chunk: Buffer) => {
        if (process.env.CAIRN_TEST_LOG) process.stderr.write(chunk)
      })
      children.push(child)
      return child
    },
    async trigger(dagId, params = {}) {
      const result = await db.tx((q) => triggerRun(q, { now: () => new Date() }, { dagId, params }))
      if (!result.ok) throw new Error(result.message)
      return result.run.runId
    },
    async waitForRun(runId, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const { rows } = await db.query<{ state: string }>('SELECT state FROM cairn.run WHERE run_id = $1', [runId])
        const state = rows[0]?.state
        if (state === 'success' || state === 'failed' || state === 'cancelled') return state
        if (Date.now() > deadline) throw new Error(`run ${runId} still ${state ?? 'missing'} after ${timeoutMs} ms; tasks: ${JSON.stringify(await taskStates(db, runId))}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    },
    taskStates: (runId) => taskStates(db, runId),
  }
}

/**
 * A folder tasks may write into although they run as the unprivileged task user (as root, the tests'
 * workers run them so): sticky and world-writable like /tmp, with every folder above it passable.
 */
export function taskWritableDir(path: string): string {
  mkdirSync(path, { recursive: true })
  chmodSync(path, 0o1777)
  const { root } = parse(path)
  for (let folder = dirname(path); folder !== root; folder = dirname(folder)) {
    const mode = statSync(folder).mode
    if (!(mode & 0o001)) chmodSync(folder, (mode & 0o7777) | 0o001)
  }
  return path
}

async function taskStates(db: Db, runId: string): Promise<Record<string, string>> {
  const { rows } = await db.query<{ task_id: string; state: string }>('SELECT task_id, state FROM cairn.task_instance WHERE run_id = $1 ORDER BY task_id', [runId])
  return Object.fromEntries(rows.map((r) => [r.task_id, r.state]))
}

/** SIGTERM, then SIGKILL after 10 s; resolves when the process is gone. */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000)
    child.once('exit', () => {
      clearTimeout(kill)
      resolve()
    })
    child.kill('SIGTERM')
  })
}
