/**
 * CSV into `loaded`: columns from the header (parsed here, so that a malformed line further down
 * cannot confuse DuckDB's sniffer about the columns themselves), undeclared types from DuckDB's
 * sniffer, rows read by DuckDB with `store_rejects` so that lines it cannot split or convert become
 * bad rows with their line numbers instead of failing the whole read.
 *
 * Integer and timestamp columns are read as text and converted by typing.ts: DuckDB's CSV reader
 * rounds "1.5" into an integer column and turns an unparsable TIMESTAMPTZ into NULL without a word.
 */
import { sqlIdent, sqlString } from '../../engine/data/duckdb.ts'
import { columnTypeOf } from '../../engine/data/column-types.ts'
import type { ColumnType } from '../../engine/data/column-types.ts'
import { dataInvalid } from './failure.ts'
import type { IngestFailure } from './failure.ts'
import type { CsvOptions } from './params.ts'
import { LOADED, countLoaded, loadedExists, missingColumnsMessage, planColumns } from './loaded.ts'
import type { BadRow, LoadContext, LoadedPart, LoadedSource } from './loaded.ts'
import { locateRecords, readHeader } from './csv-records.ts'
import { typedSelect } from './typing.ts'
import type { ColumnPlan } from './typing.ts'

const MAX_LINE_BYTES = 64 * 1024 * 1024
/** Read natively by DuckDB (its conversion errors are reported with the line); the rest as text. */
const READER_TYPE: Partial<Record<ColumnType, string>> = { number: 'DOUBLE', boolean: 'BOOLEAN', date: 'DATE' }

export interface SourceFile {
  path: string
  /** How messages name it. */
  label: string
}

export async function loadCsv(files: readonly SourceFile[], options: CsvOptions, ctx: LoadContext): Promise<LoadedSource | IngestFailure> {
  const delimiter = options.delimiter ?? ','
  const header = options.header ?? true
  const parts: LoadedPart[] = []
  let plans: ColumnPlan[] | undefined
  for (const [index, file] of files.entries()) {
    const names = await columnNames(file.path, delimiter, header)
    if (names === undefined) {
      ctx.log.info(`${file.label}: empty file, no rows`)
      continue
    }
    if (new Set(names).size !== names.length) return dataInvalid(`${file.label}: the header names a column twice (${names.join(', ')})`)
    if (plans === undefined) {
      const sniffed = await sniffTypes(ctx, file.path, delimiter, header, names.length)
      const planned = planColumns(names, (_name, i) => inferredType(sniffed, i), (_name, type) => (READER_TYPE[type] ? 'exact' : 'text'), ctx, file.label)
      if ('missing' in planned) return dataInvalid(missingColumnsMessage(file.label, planned.missing, names))
      plans = planned
    } else if (names.join('\u0000') !== plans.map((p) => p.name).join('\u0000')) {
      return dataInvalid(`${file.label} has the columns ${names.join(', ')}, but ${files[0]!.label} has ${plans.map((p) => p.name).join(', ')}: every file of a source needs the same columns`)
    }
    const exists = await loadedExists(ctx.duck)
    const before = exists ? await countLoaded(ctx.duck) : 0
    const rejectsTable = `rejects_${index}`
    const columns = `{${plans.map((p) => `${sqlString(p.name)}: ${sqlString(p.source === 'exact' ? READER_TYPE[p.type]! : 'VARCHAR')}`).join(', ')}}`
    const read = `read_csv($1, header = ${header}, delim = $2, quote = '"', escape = '"', auto_detect = false, columns = ${columns}, ` +
      `store_rejects = true, rejects_table = ${sqlString(rejectsTable)}, rejects_scan = ${sqlString(`${rejectsTable}_scan`)}, max_line_size = ${MAX_LINE_BYTES})`
    const select = typedSelect(plans, (p) => sqlIdent(p.name), read)
    await ctx.duck.run(exists ? `INSERT INTO ${LOADED} ${select}` : `CREATE TABLE ${LOADED} AS ${select}`, [file.path, delimiter])
    const end = await countLoaded(ctx.duck)
    const rejects = await readRejects(ctx, rejectsTable, file.label)
    // DuckDB counts a record with a line break inside quotes as one line: the file's own line numbers are found by a scan.
    const rejectedLines = new Set(rejects.map((r) => r.line))
    if (rejects.length > 0) {
      const { rejectedAt } = await locateRecords(file.path, header, rejectedLines, [])
      for (const r of rejects) r.line = rejectedAt.get(r.line) ?? r.line
    }
    parts.push({
      source: file.label,
      unit: 'line',
      firstRowid: before,
      endRowid: end,
      rejects,
      async locate(rows) {
        const { kept: spots } = await locateRecords(file.path, header, rejectedLines, rows.map((r) => r.rowid - before))
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

async function columnNames(path: string, delimiter: string, header: boolean): Promise<string[] | undefined> {
  const first = await readHeader(path, delimiter)
  if (first === undefined) return undefined
  return header ? first.map((name, i) => (name === '' ? `column${i}` : name)) : first.map((_f, i) => `column${i}`)
}

/** DuckDB's guess for each column, by position; undefined when the sniffer gives up (the columns are then strings). */
async function sniffTypes(ctx: LoadContext, path: string, delimiter: string, header: boolean, count: number): Promise<string[] | undefined> {
  try {
    const rows = await ctx.duck.rows<{ column_type: string }>(`DESCRIBE SELECT * FROM read_csv($1, header = ${header}, delim = $2, quote = '"', escape = '"', max_line_size = ${MAX_LINE_BYTES})`, [path, delimiter])
    return rows.length === count ? rows.map((r) => r.column_type) : undefined
  } catch {
    return undefined
  }
}

function inferredType(sniffed: string[] | undefined, index: number): { type: ColumnType; source: 'text' | 'exact'; note?: string } {
  if (sniffed === undefined) return { type: 'string', source: 'text', note: 'the file could not be sampled; declare the type to convert it' }
  const duckType = sniffed[index]!
  const type = columnTypeOf(duckType) ?? 'string'
  return { type, source: READER_TYPE[type] ? 'exact' : 'text' }
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
