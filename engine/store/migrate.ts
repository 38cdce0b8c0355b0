/**
 * Schema migrations: `migrations/NNNN_name.sql`, applied in order, each in its own transaction together
 * with its row in cairn.migration. Safe to run from several processes starting at once: every
 * transaction first takes one advisory lock, so the others wait and then find nothing left to do.
 *
 * A migration file may hold several statements, but none that cannot run inside a transaction
 * (CREATE INDEX CONCURRENTLY, ALTER TYPE ... ADD VALUE before PG 12 ...). Never edit an applied file;
 * add the next number.
 *
 * migrate() is idempotent, so a caller may wrap it in withReconnect.
 */
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import type { Db } from './db.ts'

export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url))

/** pg_advisory_xact_lock key: "cairnmig" in ASCII. */
const MIGRATION_LOCK_KEY = '7161130624338012519'

const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/

export interface Migration {
  version: number
  /** The file name, e.g. `0001_init.sql`. */
  name: string
  sql: string
}

export interface MigrateOptions {
  /** @default MIGRATIONS_DIR */
  dir?: string
}

export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const migrations: Migration[] = []
  for (const name of (await readdir(dir)).sort()) {
    if (!name.endsWith('.sql')) continue
    const match = FILE_NAME.exec(name)
    if (!match) throw new Error(`migration file ${name} in ${dir} is not named NNNN_name.sql`)
    const version = Number(match[1])
    const previous = migrations.at(-1)
    if (previous?.version === version) throw new Error(`migrations ${previous.name} and ${name} share version ${version}`)
    migrations.push({ version, name, sql: await readFile(join(dir, name), 'utf8') })
  }
  return migrations
}

/** Applies the migrations this database lacks; resolves to the names of those it applied (in order). */
export async function migrate(db: Db, log: Logger, options: MigrateOptions = {}): Promise<{ applied: string[] }> {
  const migrations = await loadMigrations(options.dir)
  const known = new Map(migrations.map((m) => [m.version, m]))
  const applied: string[] = []
  for (;;) {
    const done = await db.tx(async (q) => {
      await q.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY])
      // Checked before creating: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when the schema exists.
      const { rows: table } = await q.query<{ exists: boolean }>(`SELECT to_regclass('cairn.migration') IS NOT NULL AS exists`)
      if (!table[0]?.exists) {
        await q.query('CREATE SCHEMA IF NOT EXISTS cairn')
        await q.query('CREATE TABLE IF NOT EXISTS cairn.migration (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())')
      }
      const { rows } = await q.query<{ version: number; name: string }>('SELECT version, name FROM cairn.migration ORDER BY version')
      const appliedVersions = new Set<number>()
      for (const row of rows) {
        appliedVersions.add(row.version)
        const ours = known.get(row.version)
        if (!ours) throw new Error(`database has migration ${row.version} (${row.name}) that this version of cairn does not know; upgrade cairn`)
        if (ours.name !== row.name) log.warn({ version: row.version, recorded: row.name, file: ours.name }, 'applied migration was renamed')
      }
      const next = migrations.find((m) => !appliedVersions.has(m.version))
      if (!next) return undefined
      const started = Date.now()
      try {
        await q.query(next.sql)
      } catch (error) {
        // Keeps the SQLSTATE so connection errors stay recognisable to withReconnect.
        throw Object.assign(new Error(`migration ${next.name} failed: ${(error as Error).message}`), { cause: error, code: (error as { code?: unknown }).code })
      }
      await q.query('INSERT INTO cairn.migration (version, name) VALUES ($1, $2)', [next.version, next.name])
      log.info({ migration: next.name, ms: Date.now() - started }, 'applied migration')
      return next.name
    })
    if (done === undefined) return { applied }
    applied.push(done)
  }
}
