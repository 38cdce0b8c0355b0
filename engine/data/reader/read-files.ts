/**
 * The one way cairn reads csv, jsonl and parquet files into a dataset's columns (SPEC section 7):
 * the file sources of `ingest` (and its http downloads) and `cairn datasets import` both come here,
 * so both apply the same reader, type rules and bad-row rules (docs/data.md, "Types" and "Bad rows").
 *
 * A CSV takes the fast path when the caller can give a staged version's folder: read and written as
 * Parquet into it in one pass (streamed, never held whole). When a row breaks a type rule, or when
 * the caller needs the rows in hand, the rows go into the DuckDB table `loaded` instead, as they do
 * for JSONL and Parquet.
 */
import type { StagedVersion } from '../datasets.ts'
import { loadCsv, writeCsvDirect } from './csv.ts'
import type { CsvOptions, FileFormat, SourceFile } from './csv.ts'
import { isFailure } from './failure.ts'
import type { ReadFailure } from './failure.ts'
import { loadJsonl } from './jsonl.ts'
import type { LoadContext, LoadedSource, WrittenSource } from './loaded.ts'
import { loadParquet } from './parquet.ts'

/** The file format a path's extension names (`.csv`/`.tsv`, `.jsonl`/`.ndjson`/`.json`, `.parquet`), or undefined. */
export function formatOfPath(path: string): FileFormat | undefined {
  const lower = path.toLowerCase().replace(/\.(gz|zst)$/, '')
  if (lower.endsWith('.csv') || lower.endsWith('.tsv')) return 'csv'
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson') || lower.endsWith('.json')) return 'jsonl'
  if (lower.endsWith('.parquet')) return 'parquet'
  return undefined
}

/**
 * Reads `files` (same columns each) with the declared types of `ctx`. `stage` gives a staged version
 * for the CSV fast path (omit it to always load into `loaded`); a staged folder the fast path did not
 * keep is discarded here.
 */
export async function readFiles(format: FileFormat, files: readonly SourceFile[], options: CsvOptions, ctx: LoadContext, stage?: () => Promise<StagedVersion>): Promise<LoadedSource | WrittenSource | ReadFailure> {
  if (format === 'csv' && stage) {
    const staged = await stage()
    const direct = await writeCsvDirect(files, options, ctx, staged).catch(async (error: unknown) => {
      await staged.discard()
      throw error
    })
    if (direct !== 'table' && !isFailure(direct)) return direct
    await staged.discard()
    if (direct !== 'table') return direct
    ctx.log.info('some rows break their column types: loading into a table to name them')
  }
  if (format === 'csv') return loadCsv(files, options, ctx)
  if (format === 'jsonl') return loadJsonl(files, ctx)
  return loadParquet(files, ctx)
}
