/**
 * A dataset version's rows as CSV or JSON Lines, streamed: DuckDB hands over one chunk (~2,048 rows)
 * at a time, each is formatted and written, and the next is read only once the output has taken it,
 * so memory stays flat whatever the size. Values are formatted by DuckDB as text first (timestamps
 * `2026-01-01T00:00:00.000Z`, dates `2026-01-01`, integers exactly), then quoted here.
 *
 * CSV (RFC 4180): a header line; a field with a comma, a quote, a CR or LF (or leading/trailing
 * space) is quoted, quotes doubled; null is an empty field, the empty string `""`.
 * JSONL: one object per row, keys in column order; null is null; integers as exact JSON numbers.
 */
import type { Writable } from 'node:stream'
import type { DatasetColumn } from './column-types.ts'
import { openDuckDb, parquetScan, sqlIdent } from './duckdb.ts'
import type { DuckDbOptions } from './duckdb.ts'

export const EXPORT_FORMATS = ['csv', 'jsonl'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]

/** How a written stream ended: every row written, or the reader went away (EPIPE: `| head`). */
export type ExportOutcome = { kind: 'done'; rows: number } | { kind: 'closed'; rows: number }

/** The SELECT list turning each column into text (null stays null). */
export function textColumns(columns: readonly DatasetColumn[]): string {
  return columns
    .map((c) => {
      const col = sqlIdent(c.name)
      const text = c.type === 'timestamp' ? `strftime(CAST(${col} AS TIMESTAMPTZ), '%Y-%m-%dT%H:%M:%S.%gZ')` : c.type === 'date' ? `strftime(CAST(${col} AS DATE), '%Y-%m-%d')` : `CAST(${col} AS VARCHAR)`
      return `${text} AS ${col}`
    })
    .join(', ')
}

export function csvField(value: string | null): string {
  if (value === null) return ''
  if (value === '' || /[",\r\n]/.test(value) || value !== value.trim()) return `"${value.replaceAll('"', '""')}"`
  return value
}

/** One JSON value from DuckDB's text of it; non-finite numbers (JSON has none) as the strings "NaN", "Infinity", "-Infinity". */
export function jsonValue(type: DatasetColumn['type'], value: string | null): string {
  if (value === null) return 'null'
  if (type === 'integer' || type === 'boolean') return value
  if (type === 'number') {
    if (value === 'nan' || value === '-nan') return '"NaN"'
    if (value === 'inf' || value === 'infinity') return '"Infinity"'
    if (value === '-inf' || value === '-infinity') return '"-Infinity"'
    return value
  }
  return JSON.stringify(value)
}

export function formatChunk(columns: readonly DatasetColumn[], rows: readonly (readonly (string | null)[])[], format: ExportFormat): string {
  let text = ''
  if (format === 'csv') {
    for (const row of rows) text += `${row.map(csvField).join(',')}\n`
  } else {
    const keys = columns.map((c) => `${JSON.stringify(c.name)}:`)
    for (const row of rows) text += `{${row.map((v, i) => keys[i] + jsonValue(columns[i]!.type, v)).join(',')}}\n`
  }
  return text
}

/** Writes every row of the version's files to `out`; stops quietly when `out` is closed by its reader. */
export async function exportRows(
  version: { files: readonly string[]; columns: readonly DatasetColumn[] },
  format: ExportFormat,
  out: Writable,
  duckdb: DuckDbOptions = {},
): Promise<ExportOutcome> {
  const sink = writableSink(out)
  let rows = 0
  const duck = await openDuckDb(duckdb)
  try {
    if (format === 'csv' && !(await sink.write(`${version.columns.map((c) => csvField(c.name)).join(',')}\n`))) return { kind: 'closed', rows }
    if (version.columns.length === 0) return { kind: 'done', rows }
    const result = await duck.connection.stream(`SELECT ${textColumns(version.columns)} FROM ${parquetScan(version.files)}`)
    for await (const chunk of result.yieldRows()) {
      if (!(await sink.write(formatChunk(version.columns, chunk as (string | null)[][], format)))) return { kind: 'closed', rows }
      rows += chunk.length
    }
    return { kind: 'done', rows }
  } finally {
    duck.close()
    sink.dispose()
  }
}

/** Writes with backpressure; false once the stream failed or closed (EPIPE and the like), never an unhandled 'error'. */
function writableSink(out: Writable): { write(text: string): Promise<boolean>; dispose(): void } {
  let broken = false
  const onError = () => {
    broken = true
  }
  out.on('error', onError)
  return {
    async write(text) {
      if (broken || out.destroyed || out.writableEnded) return false
      const flushed = out.write(text)
      if (!flushed && !broken) {
        await new Promise<void>((resolve) => {
          const done = () => {
            out.off('drain', done)
            out.off('error', done)
            out.off('close', done)
            resolve()
          }
          out.on('drain', done)
          out.on('error', done)
          out.on('close', done)
        })
      }
      return !broken && !out.destroyed
    },
    // The listener stays: an EPIPE reported after the last write must not crash the process either.
    dispose() {},
  }
}
