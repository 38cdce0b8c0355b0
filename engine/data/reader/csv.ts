/**
 * CSV into `loaded`, or straight into a staged version (the fast path): columns from the header
 * (parsed here, so that a malformed line further down cannot confuse DuckDB about the columns
 * themselves), undeclared types inferred from every value by typing.ts's text rules, rows read by
 * DuckDB with `store_rejects` so that lines it cannot split or convert become bad rows with their
 * line numbers instead of failing the whole read. An empty field is null, a quoted empty field ("")
 * the empty string, as `cairn datasets export` writes them.
 *
 * Integer and timestamp columns are read as text and converted by typing.ts: DuckDB's CSV reader
 * rounds "1.5" into an integer column and turns an unparsable TIMESTAMPTZ into NULL without a word
 * (reading a timestamp as text and casting it costs no more than DuckDB's own TIMESTAMPTZ read).
 * So are undeclared columns, whose values must fit the inferred type by the inference's own rule,
 * which is stricter than DuckDB's casts (`1` is no boolean, `inf` no number, `2026-1-2` no date).
 */
import { sqlIdent, sqlString } from '../duckdb.ts'
import type { ColumnType } from '../column-types.ts'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { StagedVersion } from '../datasets.ts'
import { dataInvalid, isFailure } from './failure.ts'
import type { ReadFailure } from './failure.ts'
import { LOADED, countLoaded, loadedExists, missingColumnsMessage, planColumns } from './loaded.ts'
import type { BadRow, LoadContext, LoadedPart, LoadedSource, WrittenSource } from './loaded.ts'
import { locateRecords, readHeader } from './csv-records.ts'
import { checkedSelect, inferTextTypes, typedSelect } from './typing.ts'
import type { ColumnPlan } from './typing.ts'

const MAX_LINE_BYTES = 64 * 1024 * 1024
/** Declared types read natively by DuckDB (its conversion errors are reported with the line); the rest as text. */
const READER_TYPE: Partial<Record<ColumnType, string>> = { number: 'DOUBLE', boolean: 'BOOLEAN', date: 'DATE' }

export type FileFormat = 'csv' | 'jsonl' | 'parquet'
export const FILE_FORMATS: readonly FileFormat[] = ['csv', 'jsonl', 'parquet']

export interface CsvOptions {
  /** Field separator. @default "," */
  delimiter?: string
  /** Whether the file starts with a header line. @default true */
  header?: boolean
}

export interface SourceFile {
  path: string
  /** How messages name it. */
  label: string
}

export async function loadCsv(files: readonly SourceFile[], options: CsvOptions, ctx: LoadContext): Promise<LoadedSource | ReadFailure> {
  const parts: LoadedPart[] = []
  let plans: ColumnPlan[] | undefined
  for (const [index, file] of files.entries()) {
    const prepared = await prepareFile(file, files, options, plans, ctx, 'all')
    if (prepared === undefined) continue
    if (isFailure(prepared)) return prepared
    plans = prepared.plans
    const exists = await loadedExists(ctx.duck)
    const before = exists ? await countLoaded(ctx.duck) : 0
    const rejectsTable = `rejects_${index}`
    const select = typedSelect(plans, (p) => sqlIdent(p.name), readCsv(plans, options, rejectsTable))
    await ctx.duck.run(exists ? `INSERT INTO ${LOADED} ${select}` : `CREATE TABLE ${LOADED} AS ${select}`, [file.path, prepared.delimiter])
    const end = await countLoaded(ctx.duck)
    const { rejects, rejectedLines } = await fileRejects(ctx, rejectsTable, file, prepared.header)
    parts.push({
      source: file.label,
      unit: 'line',
      firstRowid: before,
      endRowid: end,
      rejects,
      async locate(rows) {
        const { kept: spots } = await locateRecords(file.path, prepared.header, rejectedLines, rows.map((r) => r.rowid - before))
        return new Map(rows.flatMap((r) => {
          const spot = spots.get(r.rowid - before)
          return spot ? [[r.rowid, { line: spot.line, raw: spot.text }] as const] : []
        }))
      },
    })
  }
  if (plans === undefined) return dataInvalid(`${files.map((f) => f.label).join(', ')}: no header and no rows (empty file)`)
  return { plans, parts, hasOrd: false }
}

/** Raised inside DuckDB by the fast path when a row breaks a type or `nullable` rule. */
const BAD_ROW_MARK = 'cairn: a row needs the bad-row report'

/**
 * The fast path: each file read and written as Parquet into the staged folder in one pass, in source
 * order, with no table in between. Undeclared types come from a sample of the first file's first rows
 * and every value is checked against them. A row that breaks a type or `nullable` rule stops it
 * ('table': the caller then loads into `loaded`, which infers from every value and can name such
 * rows); lines the reader refuses do not, their lines are known, unless one is refused only for its
 * length (the fast path reads with DuckDB's default line limit, the table with MAX_LINE_BYTES). Since
 * more values can only rule types out, a pass that no value stops has the types inference from
 * every value gives.
 */
export async function writeCsvDirect(files: readonly SourceFile[], options: CsvOptions, ctx: LoadContext, staged: StagedVersion): Promise<WrittenSource | ReadFailure | 'table'> {
  let plans: ColumnPlan[] | undefined
  const written: string[] = []
  const rejected: BadRow[] = []
  for (const [index, file] of files.entries()) {
    const prepared = await prepareFile(file, files, options, plans, ctx, 'sample')
    if (prepared === undefined) continue
    if (isFailure(prepared)) return prepared
    plans = prepared.plans
    const rejectsTable = `direct_rejects_${index}`
    const select = checkedSelect(plans, (p) => sqlIdent(p.name), readCsv(plans, options, rejectsTable, 'default'), BAD_ROW_MARK)
    const target = join(staged.dir, `b-${String(index).padStart(5, '0')}.parquet`)
    try {
      await ctx.duck.run(`COPY (${select}) TO ${sqlString(target)} (FORMAT parquet)`, [file.path, prepared.delimiter])
    } catch (error) {
      if (error instanceof Error && error.message.includes(BAD_ROW_MARK)) {
        for (const path of [...written, target]) await rm(path, { force: true })
        return 'table'
      }
      throw error
    }
    written.push(target)
    if (await overlongLines(ctx, rejectsTable)) {
      for (const path of written) await rm(path, { force: true })
      return 'table'
    }
    rejected.push(...(await fileRejects(ctx, rejectsTable, file, prepared.header)).rejects)
  }
  if (plans === undefined) return dataInvalid(`${files.map((f) => f.label).join(', ')}: no header and no rows (empty file)`)
  return { written: true, plans, staged, files: written, rejects: rejected }
}

interface PreparedFile {
  plans: ColumnPlan[]
  delimiter: string
  header: boolean
}

/** Rows of the first file the fast path infers undeclared types from. */
const SAMPLE_ROWS = 20_000
/** Read buffer of the sample: above DuckDB's default line limit (2 MB), which it must exceed. */
const SAMPLE_BUFFER_BYTES = 4 * 1024 * 1024

/**
 * The columns of one file (the first file's plans, or a check that a later file has the same
 * columns); undefined for an empty file. Undeclared types come from every value of every file
 * ('all') or from the first rows of this one ('sample', marked so that every value is checked).
 */
async function prepareFile(file: SourceFile, files: readonly SourceFile[], options: CsvOptions, plans: ColumnPlan[] | undefined, ctx: LoadContext, infer: 'all' | 'sample'): Promise<PreparedFile | ReadFailure | undefined> {
  const delimiter = options.delimiter ?? ','
  const header = options.header ?? true
  const names = await columnNames(file.path, delimiter, header)
  if (names === undefined) {
    ctx.log.info(`${file.label}: empty file, no rows`)
    return undefined
  }
  if (new Set(names).size !== names.length) return dataInvalid(`${file.label}: the header names a column twice (${names.join(', ')})`)
  if (plans === undefined) {
    const undeclared = names.filter((n) => !ctx.declared.has(n))
    const inferred = await inferCsvTypes(ctx, infer === 'all' ? files : [file], names, undeclared, delimiter, header, infer === 'sample' ? SAMPLE_ROWS : undefined)
    // A sample in which a column has no value at all decides nothing: infer from every value.
    const types = inferred.some((t) => t === undefined) ? await inferCsvTypes(ctx, files, names, undeclared, delimiter, header, undefined) : inferred
    const sampled = infer === 'sample' && types === inferred
    const planned = planColumns(names, (name) => ({ type: types[undeclared.indexOf(name)] ?? 'string', source: 'text', ...(sampled ? { sampled } : {}) }), (_name, type) => (READER_TYPE[type] ? 'exact' : 'text'), ctx, file.label)
    if ('missing' in planned) return dataInvalid(missingColumnsMessage(file.label, planned.missing, names))
    return { plans: planned, delimiter, header }
  }
  if (names.join('\u0000') !== plans.map((p) => p.name).join('\u0000')) {
    return dataInvalid(`${file.label} has the columns ${names.join(', ')}, but ${files[0]!.label} has ${plans.map((p) => p.name).join(', ')}: every file of a source needs the same columns`)
  }
  return { plans, delimiter, header }
}

/**
 * `read_csv` of `$1` (delimiter `$2`) with every column's reader type and the refused lines kept in
 * `rejectsTable`. Lines up to MAX_LINE_BYTES, or up to DuckDB's default limit (`lineLimit: 'default'`,
 * the fast path): DuckDB sizes its read buffers by the limit, and buffers as large as MAX_LINE_BYTES
 * asks for cost the two-thread read a quarter of its speed.
 */
function readCsv(plans: readonly ColumnPlan[], options: CsvOptions, rejectsTable: string, lineLimit: 'max' | 'default' = 'max'): string {
  const columns = `{${plans.map((p) => `${sqlString(p.name)}: ${sqlString(p.source === 'exact' ? READER_TYPE[p.type]! : 'VARCHAR')}`).join(', ')}}`
  return `read_csv($1, header = ${options.header ?? true}, delim = $2, quote = '"', escape = '"', auto_detect = false, columns = ${columns}, ` +
    `allow_quoted_nulls = false, store_rejects = true, rejects_table = ${sqlString(rejectsTable)}, rejects_scan = ${sqlString(`${rejectsTable}_scan`)}${lineLimit === 'max' ? `, max_line_size = ${MAX_LINE_BYTES}` : ''})`
}

/** Whether the fast path's read refused a line only for its length (the table's read takes it). */
async function overlongLines(ctx: LoadContext, rejectsTable: string): Promise<boolean> {
  const rows = await ctx.duck.rows(`SELECT 1 FROM ${sqlIdent(rejectsTable)} WHERE error_type = 'LINE SIZE OVER MAXIMUM' LIMIT 1`)
  return rows.length > 0
}

/** The lines the reader refused, numbered as the file's own lines (DuckDB counts a record with a quoted line break as one line). */
async function fileRejects(ctx: LoadContext, table: string, file: SourceFile, header: boolean): Promise<{ rejects: BadRow[]; rejectedLines: Set<number> }> {
  const rejects = await readRejects(ctx, table, file.label)
  const rejectedLines = new Set(rejects.map((r) => r.line))
  if (rejects.length > 0) {
    const { rejectedAt } = await locateRecords(file.path, header, rejectedLines, [])
    for (const r of rejects) r.line = rejectedAt.get(r.line) ?? r.line
  }
  return { rejects, rejectedLines }
}

async function columnNames(path: string, delimiter: string, header: boolean): Promise<string[] | undefined> {
  const first = await readHeader(path, delimiter)
  if (first === undefined) return undefined
  return header ? first.map((name, i) => (name === '' ? `column${i}` : name)) : first.map((_f, i) => `column${i}`)
}

/**
 * The inferred type of each of `undeclared` over the files (all columns read as text, lines the reader
 * cannot split left out), or over the first `limit` rows; undefined for a column a sample has no value in.
 */
async function inferCsvTypes(ctx: LoadContext, files: readonly SourceFile[], names: readonly string[], undeclared: readonly string[], delimiter: string, header: boolean, limit: number | undefined): Promise<Array<ColumnType | undefined>> {
  if (undeclared.length === 0) return []
  const columns = `{${names.map((n) => `${sqlString(n)}: 'VARCHAR'`).join(', ')}}`
  // A sample leaves out lines longer than DuckDB's default limit (the pass after it checks every value anyway),
  // and reads small buffers: DuckDB reads whole buffers, so its default ones would scan far more than the sample.
  const scan = `read_csv([${files.map((f) => sqlString(f.path)).join(', ')}], header = ${header}, delim = ${sqlString(delimiter)}, quote = '"', escape = '"', auto_detect = false, columns = ${columns}, ` +
    `allow_quoted_nulls = false, ignore_errors = true, ${limit === undefined ? `max_line_size = ${MAX_LINE_BYTES}` : `buffer_size = ${SAMPLE_BUFFER_BYTES}`})`
  const from = limit === undefined ? scan : `(SELECT * FROM ${scan} LIMIT ${limit})`
  return inferTextTypes(ctx.duck, from, undeclared.map((n) => sqlIdent(n)), undefined, limit !== undefined)
}

interface RawReject {
  line: string
  column_name: string | null
  error_type: string
  csv_line: string | null
  error_message: string
}

/** One bad row per rejected line (a line can fail in several columns), in line order. */
async function readRejects(ctx: LoadContext, table: string, label: string): Promise<BadRow[]> {
  const rows = await ctx.duck.rows<RawReject>(`SELECT line::VARCHAR AS line, column_name, error_type, csv_line, error_message FROM ${sqlIdent(table)} ORDER BY line`)
  const byLine = new Map<number, BadRow>()
  for (const r of rows) {
    const line = Number(r.line)
    const reason = rejectReason(r)
    const seen = byLine.get(line)
    if (seen) seen.reason += `; ${reason}`
    else byLine.set(line, { source: label, unit: 'line', line, reason, raw: (r.csv_line ?? '').replace(/^[\r\n]+/, '').replace(/[\r\n]+$/, '') })
  }
  await ctx.duck.run(`DROP TABLE ${sqlIdent(table)}`)
  return [...byLine.values()]
}

function rejectReason(r: RawReject): string {
  const message = r.error_message.replace(/^Error when converting column "[^"]*"\. /, '')
  const counts = /Expected Number of Columns: (\d+) Found: (\d+)/.exec(message)
  if (counts) return `expected ${counts[1]} fields, found ${counts[2]}`
  if (r.error_type === 'CAST' && r.column_name) return `column ${r.column_name}: ${message}`
  if (r.error_type === 'UNQUOTED VALUE') return 'a quoted value is never closed (the rest of the file is part of this row)'
  return message
}
