/**
 * DuckDB for the data operators: one in-memory database per operation (cheap to open, nothing shared
 * between attempts), always in UTC, with the deployment's thread and memory limits. Values reach SQL
 * as bound parameters where DuckDB allows them and otherwise through `sqlString`/`sqlIdent`, which
 * quote exactly as DuckDB's grammar reads them; no user value is ever spliced unquoted.
 */
import { DuckDBInstance } from '@duckdb/node-api'
import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api'

export interface DuckDbOptions {
  /** Threads DuckDB may use (data.duckdb_threads). @default DuckDB's own */
  threads?: number
  /** Memory limit such as "2GB" (data.duckdb_memory). @default DuckDB's own */
  memory?: string
  /** Where DuckDB spills when memory runs out. @default DuckDB's own (in memory only) */
  tempDir?: string
}

export interface DuckDb {
  /** Runs a statement; `params` bind to `$1`, `$2`, ... */
  run(sql: string, params?: readonly DuckDBValue[]): Promise<void>
  /** Rows as plain objects with JSON-friendly values (BIGINT as string, timestamps as text). */
  rows<T = Record<string, unknown>>(sql: string, params?: readonly DuckDBValue[]): Promise<T[]>
  /** Rows as plain JS values (BIGINT as bigint, TIMESTAMPTZ as DuckDBTimestampTZValue, ...). */
  values(sql: string, params?: readonly DuckDBValue[]): Promise<unknown[][]>
  /** The connection itself, for appenders and streaming reads. */
  readonly connection: DuckDBConnection
  /**
   * Another connection to the same database: a query on `connection` ends a result it is still
   * streaming, so whatever is written while a stream is read goes through a second one.
   */
  connect(): Promise<DuckDBConnection>
  close(): void
}

export async function openDuckDb(options: DuckDbOptions = {}): Promise<DuckDb> {
  const settings: Record<string, string> = {}
  if (options.threads !== undefined) settings.threads = String(options.threads)
  if (options.memory !== undefined) settings.memory_limit = options.memory
  if (options.tempDir !== undefined) settings.temp_directory = options.tempDir
  const instance = await DuckDBInstance.create(':memory:', settings)
  const connection = await instance.connect()
  // Without the ICU extension (not shipped here, and not downloadable) TIMESTAMPTZ is always UTC; where
  // ICU loads, pin its zone so that results never depend on the machine's.
  await connection.run(`SET TimeZone = 'UTC'`).catch(() => undefined)
  const prepared = async (sql: string, params: readonly DuckDBValue[] | undefined) => {
    if (!params || params.length === 0) return connection.run(sql)
    return connection.run(sql, [...params])
  }
  return {
    connection,
    connect: () => instance.connect(),
    async run(sql, params) {
      await prepared(sql, params)
    },
    async rows<T>(sql: string, params?: readonly DuckDBValue[]) {
      const result = await prepared(sql, params)
      const reader = await result.getRowObjectsJson()
      return reader as T[]
    },
    async values(sql, params) {
      const result = await prepared(sql, params)
      return (await result.getRowsJS()) as unknown[][]
    },
    close() {
      connection.closeSync()
      instance.closeSync()
    },
  }
}

/** A SQL string literal: single quotes doubled, as DuckDB (and standard SQL) reads them. */
export function sqlString(value: string): string {
  if (value.includes('\0')) throw new Error('a SQL string cannot hold a NUL character')
  return `'${value.replaceAll("'", "''")}'`
}

/** A quoted SQL identifier: double quotes doubled. */
export function sqlIdent(name: string): string {
  if (name.includes('\0')) throw new Error('a SQL identifier cannot hold a NUL character')
  return `"${name.replaceAll('"', '""')}"`
}

/** `read_parquet([...])` over a version's files (an empty list is refused by DuckDB, so callers pass at least one). */
export function parquetScan(files: readonly string[]): string {
  return `read_parquet([${files.map(sqlString).join(', ')}])`
}
