/**
 * Dataset versions for tests, published through the datasets service as a task or an import would:
 * rows from a DuckDB query, plus what the producing task records (inputs, expectation report, the
 * rows quarantine kept aside as a Parquet file in the version folder).
 */
import { mkdirSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import type { Datasets, PublishRequest } from '../../engine/data/datasets.ts'
import { openDuckDb, sqlString } from '../../engine/data/duckdb.ts'

export interface SeedOptions extends Partial<Omit<PublishRequest, 'staged'>> {
  /** A query whose rows become the quarantined rows file `bad_rows.parquet` (badRows is set to match). */
  badRowsSql?: string
  /** What badRows.location is relative to: the version folder (default) or the datasets directory (as ingest writes it). */
  badRowsRelativeTo?: 'version' | 'datasets'
}

export async function seedVersion(datasets: Datasets, name: string, sql: string, options: SeedOptions = {}): Promise<number> {
  const { badRowsSql, badRowsRelativeTo, ...request } = options
  const staged = await datasets.stage(name)
  const duck = await openDuckDb({ threads: 1 })
  let badCount = 0
  try {
    await duck.run(`COPY (${sql}) TO ${sqlString(join(staged.dir, 'part-0.parquet'))} (FORMAT parquet)`)
    if (badRowsSql !== undefined) {
      // In a subfolder: every *.parquet file at the top of a version folder is read as its rows.
      mkdirSync(join(staged.dir, 'quarantine'))
      await duck.run(`COPY (${badRowsSql}) TO ${sqlString(join(staged.dir, 'quarantine', 'bad_rows.parquet'))} (FORMAT parquet)`)
      const [n] = await duck.rows<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM (${badRowsSql})`)
      badCount = Number(n!.n)
    }
  } finally {
    duck.close()
  }
  const [published] = await datasets.publish([{
    staged,
    producedKind: 'ingest',
    ...(badRowsSql !== undefined
      ? { badRows: { count: badCount, location: `${badRowsRelativeTo === 'datasets' ? `${relative(datasets.dir, staged.dir).split(sep).join('/')}/` : ''}quarantine/bad_rows.parquet` } }
      : {}),
    ...request,
  }])
  return published!.version.version
}
