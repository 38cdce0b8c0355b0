/**
 * The database of a running `cairn up` (same CAIRN_HOME) or of DATABASE_URL, for commands that
 * inspect or change state. Not reaching it, or reaching one without cairn's tables, is exit 2:
 * the command never got to ask the engine anything.
 */
import { createLogger } from '../log.ts'
import { CannotConnectError, openSharedDatabase } from '../runtime/connect.ts'
import { isConnectionError } from '../store/db.ts'
import type { Db } from '../store/db.ts'
import { EXIT } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'

/** undefined_table, invalid_schema_name: a database nobody has migrated. */
const NO_SCHEMA = new Set(['42P01', '3F000'])

export async function withDatabase(io: CommandIo, fn: (db: Db) => Promise<ExitCode>): Promise<ExitCode> {
  // The engine's default level (info) is for long-running processes; a one-shot command says what
  // went wrong itself, so its database layer stays quiet unless CAIRN_LOG_LEVEL asks otherwise.
  const log = createLogger({ level: io.settings.env.CAIRN_LOG_LEVEL || 'error', name: 'cairn-cli' })
  let db: Db
  try {
    db = (await openSharedDatabase(io.settings, log)).db
  } catch (error) {
    if (!(error instanceof CannotConnectError)) throw error
    io.stderr(`cairn: ${error.message}`)
    return EXIT.usage
  }
  try {
    return await fn(db)
  } catch (error) {
    const code = (error as { code?: unknown }).code
    if (typeof code === 'string' && NO_SCHEMA.has(code)) {
      io.stderr(`cairn: the database has no cairn tables yet; start \`cairn up\` (or \`cairn scheduler\`) on it first (${(error as Error).message})`)
      return EXIT.usage
    }
    if (isConnectionError(error)) {
      io.stderr(`cairn: lost the connection to the database (${(error as Error).message}); is \`cairn up\` still running?`)
      return EXIT.usage
    }
    throw error
  } finally {
    await db.close()
  }
}
