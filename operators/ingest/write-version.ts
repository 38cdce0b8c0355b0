/**
 * The new version's rows, written into the staged folder by mode:
 * - replace: the rows loaded now;
 * - append: the previous version's files (hard links: versions are immutable, so they can share
 *   files; a copy where links are impossible) followed by a file of the rows loaded now;
 * - interval: the previous version without the rows whose time_column lies in the interval, plus
 *   the loaded rows of the interval, sorted by time_column and then every column, so that a re-run of
 *   the same interval writes identical rows in an identical order.
 */
import { copyFile, link } from 'node:fs/promises'
import { join } from 'node:path'
import type { DuckDb } from '../../engine/data/duckdb.ts'
import { parquetScan, sqlIdent, sqlString } from '../../engine/data/duckdb.ts'
import type { DatasetVersion } from '../../engine/data/datasets.ts'
import type { DatasetColumn } from '../../engine/data/column-types.ts'
import type { IngestMode } from './params.ts'

export interface IntervalFilter {
  column: string
  start: Date
  end: Date
}

/** `column` lies in [start, end) (a date column counts from its midnight UTC). */
export function inInterval(filter: IntervalFilter): string {
  const col = `CAST(${sqlIdent(filter.column)} AS TIMESTAMPTZ)`
  return `(${col} >= CAST(${sqlString(filter.start.toISOString())} AS TIMESTAMPTZ) AND ${col} < CAST(${sqlString(filter.end.toISOString())} AS TIMESTAMPTZ))`
}

const partName = (n: number) => `part-${String(n).padStart(5, '0')}.parquet`

export async function writeVersion(
  duck: DuckDb,
  dir: string,
  mode: IngestMode,
  columns: readonly DatasetColumn[],
  incoming: string,
  previous: DatasetVersion | undefined,
  interval: IntervalFilter | undefined,
): Promise<void> {
  const list = columns.map((c) => sqlIdent(c.name)).join(', ')
  if (mode === 'append' && previous) {
    for (const [i, file] of previous.files.entries()) {
      const target = join(dir, partName(i))
      await link(file, target).catch(() => copyFile(file, target))
    }
    await duck.run(`COPY (SELECT ${list} FROM ${incoming}) TO ${sqlString(join(dir, partName(previous.files.length)))} (FORMAT parquet)`)
    return
  }
  if (mode === 'interval' && previous && interval) {
    const order = [sqlIdent(interval.column), ...columns.filter((c) => c.name !== interval.column).map((c) => sqlIdent(c.name))].join(', ')
    const kept = `SELECT ${list} FROM ${parquetScan(previous.files)} WHERE NOT coalesce(${inInterval(interval)}, false)`
    await duck.run(`COPY (SELECT * FROM (${kept} UNION ALL SELECT ${list} FROM ${incoming}) ORDER BY ${order}) TO ${sqlString(join(dir, partName(0)))} (FORMAT parquet)`)
    return
  }
  const order = mode === 'interval' && interval ? ` ORDER BY ${[sqlIdent(interval.column), ...columns.filter((c) => c.name !== interval.column).map((c) => sqlIdent(c.name))].join(', ')}` : ''
  await duck.run(`COPY (SELECT ${list} FROM ${incoming}${order}) TO ${sqlString(join(dir, partName(0)))} (FORMAT parquet)`)
}

/**
 * For rows already written into the staged folder (named `b-*.parquet`): the previous version's files
 * linked in front of them as `a-*.parquet`, since a version's rows are its files in name order.
 */
export async function linkPrevious(dir: string, previous: DatasetVersion | undefined): Promise<void> {
  for (const [i, file] of (previous?.files ?? []).entries()) {
    const target = join(dir, `a-${String(i).padStart(5, '0')}.parquet`)
    await link(file, target).catch(() => copyFile(file, target))
  }
}

/** Why the previous version cannot take these rows (other columns or types), or undefined. */
export function schemaMismatch(previous: DatasetVersion, columns: readonly DatasetColumn[]): string | undefined {
  const was = previous.columns.map((c) => `${c.name} ${c.type}`).join(', ')
  const now = columns.map((c) => `${c.name} ${c.type}`).join(', ')
  return was === now ? undefined : `version ${previous.version} of dataset ${previous.dataset} has the columns (${was}), these rows have (${now}); mode: replace starts over with new columns`
}
