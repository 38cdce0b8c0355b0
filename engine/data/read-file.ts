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

/** A file as DuckDB reads it, with the cairn type of each column and the SELECT list that converts to it. */
export interface TypedFile {
  columns: DatasetColumn[]
  /** `SELECT <this> FROM <from>` gives the rows with exactly the DuckDB types of column-types.ts. */
  select: string
  /** The relation to select from (a view over the file: reading it reads the file again). */
  from: string
}

/**
 * Types the columns of `path`: DuckDB's inference over every value, then declared types, naive
 * timestamps as UTC and ISO-8601 text as timestamps. Creates the view `view` over the file (nothing
 * is loaded into memory), which the returned SELECT reads.
 */
export async function typeFile(duck: DuckDb, path: string, view: string, options: ReadFileOptions): Promise<TypedFile> {
  await duck.run(`CREATE OR REPLACE TEMP VIEW ${sqlIdent(view)} AS SELECT * FROM ${fileScan(path, options)}`)
  const described = await duck.rows<{ column_name: string; column_type: string }>(`DESCRIBE ${sqlIdent(view)}`)
  const declared = options.declared ?? {}
  for (const name of Object.keys(declared)) {
    if (!described.some((c) => c.column_name === name)) throw new Error(`column ${name} is declared but ${path} has no such column (it has ${described.map((c) => c.column_name).join(', ')})`)
  }
  // Text columns that are timestamps on every row (DuckDB's JSON reader leaves offsets as text, and
  // a CSV column may mix forms its sniffer gives up on): one pass over the file for all of them.
  const text = described.filter((c) => !Object.hasOwn(declared, c.column_name) && columnTypeOf(c.column_type) === 'string')
  const timestamps = new Set<string>()
  if (text.length > 0) {
    const probes = text.map((c, i) => {
      const col = sqlIdent(c.column_name)
      return `count(${col}) > 0 AND count(*) FILTER (WHERE ${col} IS NOT NULL AND (NOT regexp_full_match(trim(${col}), ${sqlString(ISO_TIMESTAMP)}) OR try_cast(trim(${col}) AS TIMESTAMPTZ) IS NULL)) = 0 AS p${i}`
    })
    const [row] = await duck.rows<Record<string, boolean>>(`SELECT ${probes.join(', ')} FROM ${sqlIdent(view)}`)
    text.forEach((c, i) => {
      if (row![`p${i}`] === true) timestamps.add(c.column_name)
    })
  }
  const columns: DatasetColumn[] = described.map((c) => {
    const type = Object.hasOwn(declared, c.column_name) ? declared[c.column_name]! : timestamps.has(c.column_name) ? 'timestamp' : columnTypeOf(c.column_type)
    if (type === undefined) throw new Error(`column ${c.column_name} of ${path} holds ${c.column_type} values, which no dataset column type holds (string, integer, number, boolean, timestamp, date)`)
    return { name: c.column_name, type }
  })
  const select = columns.map((c, i) => `${castTo(c.type, c.name, described[i]!.column_type)} AS ${sqlIdent(c.name)}`).join(', ')
  return { columns, select, from: sqlIdent(view) }
}

/**
 * Loads `path` into the table `table` of `duck` with cairn's column types, and returns those types
 * and the row count. The table holds exactly the DuckDB types of column-types.ts.
 */
export async function loadFileIntoTable(duck: DuckDb, path: string, table: string, options: ReadFileOptions): Promise<{ columns: DatasetColumn[]; rows: number }> {
  const view = `${table}__file`
  try {
    const typed = await typeFile(duck, path, view, options)
    try {
      await duck.run(`CREATE OR REPLACE TEMP TABLE ${sqlIdent(table)} AS SELECT ${typed.select} FROM ${typed.from}`)
    } catch (error) {
      throw new Error(`a value does not have its column's type: ${(error as Error).message}`)
    }
    const [count] = await duck.rows<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM ${sqlIdent(table)}`)
    return { columns: typed.columns, rows: Number(count!.n) }
  } finally {
    await duck.run(`DROP VIEW IF EXISTS ${sqlIdent(view)}`)
  }
}

/** Writes `table` as one Parquet file in `dir` (a staged version's folder); returns its path. */
export async function writeTableToParquet(duck: DuckDb, table: string, dir: string, file = 'part-0.parquet'): Promise<string> {
  const path = join(dir, file)
  await duck.run(`COPY ${sqlIdent(table)} TO ${sqlString(path)} (FORMAT parquet, COMPRESSION zstd)`)
  return path
}

/**
 * A file straight into a staged version's folder as one Parquet file, streamed by DuckDB from the
 * file to Parquet (never held in memory whole).
 */
export async function readFileToParquet(duck: DuckDb, path: string, dir: string, options: ReadFileOptions): Promise<{ columns: DatasetColumn[]; rows: number; file: string }> {
  const view = 'cairn_read_file'
  const file = join(dir, 'part-0.parquet')
  try {
    const typed = await typeFile(duck, path, view, options)
    try {
      await duck.run(`COPY (SELECT ${typed.select} FROM ${typed.from}) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION zstd)`)
    } catch (error) {
      throw new Error(`a value does not have its column's type: ${(error as Error).message}`)
    }
    const [count] = await duck.rows<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM read_parquet(${sqlString(file)})`)
    return { columns: typed.columns, rows: Number(count!.n), file }
  } finally {
    await duck.run(`DROP VIEW IF EXISTS ${sqlIdent(view)}`)
  }
}

/** The expression converting a raw column to its cairn type (DuckDB's session is UTC: a naive timestamp is read as UTC). */
function castTo(type: ColumnType, column: string, rawType: string): string {
  const col = sqlIdent(column)
  if (type === 'timestamp' && rawType === 'VARCHAR') return `CAST(trim(${col}) AS TIMESTAMPTZ)`
  return `CAST(${col} AS ${duckDbType(type)})`
}
