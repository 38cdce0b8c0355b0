/**
 * Bad rows: those the reader refused (with their lines) and those `loaded` marks with a __problem.
 * `on_bad_rows: fail` fails naming the first ones; `quarantine` sets them aside, up to `max_bad_rows`,
 * as a Parquet file of (source, line, reason, raw) inside the version's folder, in a sub-folder so
 * that the datasets service does not take it for the version's rows.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { DuckDb } from '../duckdb.ts'
import { sqlString } from '../duckdb.ts'
import { dataInvalid } from './failure.ts'
import type { ReadFailure } from './failure.ts'
import { LOADED } from './loaded.ts'
import type { BadRow, LoadedSource, WrittenSource } from './loaded.ts'

/** How many bad rows a failure message names. */
const NAMED = 5
export const BAD_ROWS_FOLDER = '_bad_rows'
export const BAD_ROWS_FILE = 'bad_rows.parquet'

export interface BadRowsVerdict {
  count: number
  /** All of them when quarantined; the first few otherwise. */
  rows: BadRow[]
}

export interface BadRowsPolicy {
  onBadRows: 'fail' | 'quarantine'
  maxBadRows: number
  /** Said after "nothing was published" when failing: how to keep the good rows. */
  hint?: string
}

/** The bad rows of what a reader read: those it refused (the fast path) or those `loaded` marks too. */
export async function badRowsOf(duck: DuckDb, read: LoadedSource | WrittenSource, policy: BadRowsPolicy): Promise<BadRowsVerdict | ReadFailure> {
  return 'written' in read ? judgeBadRows(read.rejects.length, read.rejects, policy) : collectBadRows(duck, read, policy)
}

async function collectBadRows(duck: DuckDb, loaded: LoadedSource, policy: BadRowsPolicy): Promise<BadRowsVerdict | ReadFailure> {
  const rejected = loaded.parts.reduce((n, p) => n + p.rejects.length, 0)
  const [counted] = await duck.rows<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM ${LOADED} WHERE __problem IS NOT NULL`)
  const count = rejected + Number(counted!.n)
  if (count === 0) return { count, rows: [] }
  const keepAll = policy.onBadRows === 'quarantine' && count <= policy.maxBadRows
  const wanted = keepAll ? count : NAMED
  const marked = await duck.rows<{ rowid: string; ord: string | null; problem: string }>(
    `SELECT rowid::VARCHAR AS rowid, ${loaded.hasOrd ? '__ord::VARCHAR' : 'NULL'} AS ord, __problem AS problem FROM ${LOADED} WHERE __problem IS NOT NULL ORDER BY rowid LIMIT ${wanted}`,
  )
  const rows: BadRow[] = []
  for (const part of loaded.parts) {
    const mine = marked.filter((m) => Number(m.rowid) >= part.firstRowid && Number(m.rowid) < part.endRowid)
    const spots = await part.locate(mine.map((m) => ({ rowid: Number(m.rowid), ord: m.ord === null ? null : Number(m.ord) })))
    const found = mine.map((m): BadRow => {
      const spot = spots.get(Number(m.rowid))
      return { source: part.source, unit: part.unit, line: spot?.line ?? 0, reason: m.problem, raw: spot?.raw ?? null }
    })
    rows.push(...[...part.rejects, ...found].sort((a, b) => a.line - b.line))
  }
  return judgeBadRows(count, rows, policy)
}

/** The verdict on `count` bad rows, of which `rows` are known (all of them when they may be quarantined). */
export function judgeBadRows(count: number, rows: readonly BadRow[], policy: BadRowsPolicy): BadRowsVerdict | ReadFailure {
  if (count === 0) return { count, rows: [] }
  const keepAll = policy.onBadRows === 'quarantine' && count <= policy.maxBadRows
  const first = rows.slice(0, keepAll ? rows.length : NAMED)
  if (policy.onBadRows === 'fail') {
    return dataInvalid(`${count} bad row${count === 1 ? '' : 's'}, nothing was published${policy.hint ? ` (${policy.hint})` : ''}: ${first.map(describeBadRow).join('; ')}${count > first.length ? '; ...' : ''}`)
  }
  if (!keepAll) {
    return dataInvalid(`${count} bad rows, more than max_bad_rows (${policy.maxBadRows}); nothing was published: ${first.map(describeBadRow).join('; ')}${count > first.length ? '; ...' : ''}`)
  }
  return { count, rows: first }
}

export function describeBadRow(row: BadRow): string {
  return row.unit === 'line' ? `${row.source}:${row.line}: ${row.reason}` : `${row.source} row ${row.line}: ${row.reason}`
}

/** Writes the quarantined rows into `<versionDir>/_bad_rows/bad_rows.parquet`; returns its path relative to the version folder. */
export async function writeBadRows(duck: DuckDb, versionDir: string, rows: readonly BadRow[]): Promise<string> {
  const folder = join(versionDir, BAD_ROWS_FOLDER)
  await mkdir(folder, { recursive: true })
  await duck.run(`CREATE OR REPLACE TABLE bad_rows (source VARCHAR, unit VARCHAR, line BIGINT, reason VARCHAR, raw VARCHAR)`)
  const appender = await duck.connection.createAppender('bad_rows')
  for (const row of rows) {
    appender.appendVarchar(row.source)
    appender.appendVarchar(row.unit)
    appender.appendBigInt(BigInt(row.line))
    appender.appendVarchar(row.reason)
    if (row.raw === null) appender.appendNull()
    else appender.appendVarchar(row.raw)
    appender.endRow()
  }
  appender.closeSync()
  await duck.run(`COPY bad_rows TO ${sqlString(join(folder, BAD_ROWS_FILE))} (FORMAT parquet)`)
  return `${BAD_ROWS_FOLDER}/${BAD_ROWS_FILE}`
}
