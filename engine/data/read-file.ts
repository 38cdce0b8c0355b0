/**
 * Reading a csv, jsonl or parquet file into a dataset's column types (SPEC section 7), shared by
 * `cairn datasets import` and the file sources of `ingest` so that both read a file the same way:
 *
 * - DuckDB reads the file and infers each column's type from ALL its values (not a sample: a type
 *   guessed from the first rows would fail on a later one);
 * - a timestamp without an offset is UTC (naive TIMESTAMP columns become TIMESTAMPTZ in a UTC
 *   session), and a text column whose every value is an ISO-8601 timestamp (with or without an
 *   offset, mixed) becomes a timestamp too: DuckDB's JSON reader leaves offsets as text;
 * - every column is cast to the one DuckDB type its cairn type maps to (INTEGER -> BIGINT, FLOAT and
 *   DECIMAL -> DOUBLE, ...), so versions of a dataset written by different readers have the same
 *   Parquet schema;
 * - declared types (`ingest`'s `columns`) win over inference and are enforced: a value that does not
 *   convert fails the load with the column named.
 * In CSV an empty field is null and a quoted empty field ("") the empty string. Nested JSON values (objects, arrays) are refused: no column type holds them.
 */
import { join } from 'node:path'
import { columnTypeOf, duckDbType } from './column-types.ts'
import type { ColumnType, DatasetColumn } from './column-types.ts'
import { sqlIdent, sqlString } from './duckdb.ts'
import type { DuckDb } from './duckdb.ts'

export const FILE_FORMATS = ['csv', 'jsonl', 'parquet'] as const
export type FileFormat = (typeof FILE_FORMATS)[number]

export interface ReadFileOptions {
  format: FileFormat
  /** CSV field separator. @default "," */
  delimiter?: string
  /** Whether a CSV file starts with a header line. @default true */
  header?: boolean
  /** Declared column types, by name; other columns are inferred. */
  declared?: Readonly<Record<string, ColumnType>>
}

/** The file format a path's extension names (`.csv`, `.jsonl`/`.ndjson`/`.json`, `.parquet`), or undefined. */
export function formatOfPath(path: string): FileFormat | undefined {
  const lower = path.toLowerCase().replace(/\.(gz|zst)$/, '')
  if (lower.endsWith('.csv') || lower.endsWith('.tsv')) return 'csv'
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson') || lower.endsWith('.json')) return 'jsonl'
  if (lower.endsWith('.parquet')) return 'parquet'
  return undefined
}

/** The DuckDB table function reading `path` (one file, or a glob DuckDB expands). */
export function fileScan(path: string, options: ReadFileOptions): string {
  const file = sqlString(path)
  switch (options.format) {
    case 'csv': {
      // allow_quoted_nulls = false: an empty field is null, a quoted empty one ("") the empty string (RFC 4180).
      const settings = [`header = ${options.header === false ? 'false' : 'true'}`, 'sample_size = -1', 'auto_detect = true', 'allow_quoted_nulls = false']
      if (options.delimiter !== undefined) settings.push(`delim = ${sqlString(options.delimiter)}`)
      return `read_csv(${file}, ${settings.join(', ')})`
    }
    case 'jsonl':
      return `read_json(${file}, format = 'newline_delimited', sample_size = -1)`
    case 'parquet':
      return `read_parquet(${file})`
  }
}

const ISO_TIMESTAMP = '^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?\\s*(Z|z|[+-]\\d{2}(:?\\d{2})?)?$'

/**
 * Loads `path` into the table `table` of `duck` with cairn's column types, and returns those types
 * and the row count. The table holds exactly the DuckDB types of column-types.ts.
 */
export async function loadFileIntoTable(duck: DuckDb, path: string, table: string, options: ReadFileOptions): Promise<{ columns: DatasetColumn[]; rows: number }> {
  const raw = `${table}__raw`
  await duck.run(`CREATE OR REPLACE TEMP TABLE ${sqlIdent(raw)} AS SELECT * FROM ${fileScan(path, options)}`)
  try {
    const described = await duck.rows<{ column_name: string; column_type: string }>(`DESCRIBE ${sqlIdent(raw)}`)
    const declared = options.declared ?? {}
    for (const name of Object.keys(declared)) {
      if (!described.some((c) => c.column_name === name)) throw new Error(`column ${name} is declared but ${path} has no such column (it has ${described.map((c) => c.column_name).join(', ')})`)
    }
    const columns: DatasetColumn[] = []
    for (const c of described) {
      const type = Object.hasOwn(declared, c.column_name) ? declared[c.column_name]! : await inferredType(duck, raw, c.column_name, c.column_type)
      if (type === undefined) throw new Error(`column ${c.column_name} of ${path} holds ${c.column_type} values, which no dataset column type holds (string, integer, number, boolean, timestamp, date)`)
      columns.push({ name: c.column_name, type })
    }
    const select = columns.map((c, i) => `${castTo(c.type, c.name, described[i]!.column_type)} AS ${sqlIdent(c.name)}`).join(', ')
    try {
      await duck.run(`CREATE OR REPLACE TEMP TABLE ${sqlIdent(table)} AS SELECT ${select} FROM ${sqlIdent(raw)}`)
    } catch (error) {
      throw new Error(`${path}: a value does not have its column's declared type: ${(error as Error).message}`)
    }
    const [count] = await duck.rows<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM ${sqlIdent(table)}`)
    return { columns, rows: Number(count!.n) }
  } finally {
    await duck.run(`DROP TABLE IF EXISTS ${sqlIdent(raw)}`)
  }
}

/** Writes `table` as one Parquet file in `dir` (a staged version's folder); returns its path. */
export async function writeTableToParquet(duck: DuckDb, table: string, dir: string, file = 'part-0.parquet'): Promise<string> {
  const path = join(dir, file)
  await duck.run(`COPY ${sqlIdent(table)} TO ${sqlString(path)} (FORMAT parquet, COMPRESSION zstd)`)
  return path
}

/** A file straight into a staged version's folder as Parquet: load, then write. */
export async function readFileToParquet(duck: DuckDb, path: string, dir: string, options: ReadFileOptions): Promise<{ columns: DatasetColumn[]; rows: number; file: string }> {
  const table = 'cairn_read_file'
  const loaded = await loadFileIntoTable(duck, path, table, options)
  try {
    return { ...loaded, file: await writeTableToParquet(duck, table, dir) }
  } finally {
    await duck.run(`DROP TABLE IF EXISTS ${sqlIdent(table)}`)
  }
}

async function inferredType(duck: DuckDb, table: string, column: string, duckType: string): Promise<ColumnType | undefined> {
  const type = columnTypeOf(duckType)
  if (type !== 'string') return type
  // Text that is a timestamp on every row (DuckDB's JSON reader does not parse offsets, and a CSV
  // column may mix forms DuckDB's sniffer gives up on).
  const col = sqlIdent(column)
  const [probe] = await duck.rows<{ present: string; bad: string }>(
    `SELECT count(${col})::VARCHAR AS present,
            count(*) FILTER (WHERE ${col} IS NOT NULL AND (NOT regexp_full_match(trim(${col}), ${sqlString(ISO_TIMESTAMP)}) OR try_cast(trim(${col}) AS TIMESTAMPTZ) IS NULL))::VARCHAR AS bad
       FROM ${sqlIdent(table)}`,
  )
  return Number(probe!.present) > 0 && Number(probe!.bad) === 0 ? 'timestamp' : 'string'
}

/** The expression converting a raw column to its cairn type (DuckDB's session is UTC: a naive timestamp is read as UTC). */
function castTo(type: ColumnType, column: string, rawType: string): string {
  const col = sqlIdent(column)
  if (type === 'timestamp' && rawType === 'VARCHAR') return `CAST(trim(${col}) AS TIMESTAMPTZ)`
  return `CAST(${col} AS ${duckDbType(type)})`
}
