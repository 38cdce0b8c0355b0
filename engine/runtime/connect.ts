/**
 * Finding the database: DATABASE_URL when set, else the embedded Postgres under CAIRN_HOME — started
 * by the processes that own it (`cairn up`), only looked up by every other command.
 */
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { Settings } from '../config/settings.ts'
import { createDb } from '../store/db.ts'
import type { Db } from '../store/db.ts'
import { startEmbeddedPostgres } from '../store/embedded.ts'
import { readEmbeddedUrl } from '../store/embedded-state.ts'
import type { EmbeddedPostgres } from '../store/embedded.ts'
import { migrate } from '../store/migrate.ts'

function embeddedDataDir(settings: Settings): string {
  return join(settings.home, 'postgres')
}

export interface Connection {
  db: Db
  url: string
  embedded: EmbeddedPostgres | undefined
  close(): Promise<void>
}

export class CannotConnectError extends Error {}

/** For `cairn up`: starts the embedded server when there is no DATABASE_URL, then applies migrations. */
export async function openOwnedDatabase(settings: Settings, log: Logger): Promise<Connection> {
  const embedded = settings.databaseUrl ? undefined : await startEmbeddedPostgres({ dataDir: embeddedDataDir(settings), log, restart: true })
  const url = settings.databaseUrl ?? embedded!.url
  const db = createDb(url, { log, applicationName: 'cairn' })
  try {
    await migrate(db, log)
  } catch (error) {
    await db.close()
    await embedded?.stop()
    throw error
  }
  return {
    db,
    url,
    embedded,
    async close() {
      await db.close()
      await embedded?.stop()
    },
  }
}

/** For every other command: the database of a running `cairn up` (or DATABASE_URL); never starts one. */
export async function openSharedDatabase(settings: Settings, log: Logger, options: { migrate?: boolean } = {}): Promise<Connection> {
  const url = settings.databaseUrl ?? (await readEmbeddedUrl(embeddedDataDir(settings)))
  if (!url) throw new CannotConnectError(`no database: set DATABASE_URL, or start \`cairn up\` in this folder first (looked for ${embeddedDataDir(settings)})`)
  const db = createDb(url, { log, applicationName: 'cairn-cli', connectTimeoutMs: 5000 })
  try {
    await db.query('SELECT 1')
    if (options.migrate) await migrate(db, log)
  } catch (error) {
    await db.close()
    const reason = error instanceof Error ? error.message : String(error)
    throw new CannotConnectError(`cannot connect to the database (${settings.databaseUrl ? 'DATABASE_URL' : 'embedded, is `cairn up` running?'}): ${reason}`)
  }
  return { db, url, embedded: undefined, close: () => db.close() }
}
