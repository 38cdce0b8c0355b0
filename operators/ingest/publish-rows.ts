/**
 * From `loaded` (or rows the CSV fast path already wrote into a staged folder) to a published
 * version: bad rows (fail or quarantine), the interval filter, expectations, the previous version by
 * mode, the staged files and the one publish. The operator and the ingest benchmark both go through
 * here. The staged folder is discarded on every failure.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import type { DuckDb } from '../../engine/data/duckdb.ts'
import type { Datasets, DatasetVersion, StagedVersion } from '../../engine/data/datasets.ts'
import { DatasetConflict } from '../../engine/data/datasets.ts'
import { parquetScan, sqlIdent } from '../../engine/data/duckdb.ts'
import type { DatasetColumn } from '../../engine/data/column-types.ts'
import type { DatasetInput } from '../../engine/store/datasets.ts'
import type { OperatorLogger } from '../define.ts'
import { badRowsOf, describeBadRow, writeBadRows } from '../../engine/data/reader/bad-rows.ts'
import { checkExpectationColumns, checkExpectations, describeExpectation } from './expectations.ts'
import { dataInvalid, failure, invalid, isFailure } from '../../engine/data/reader/failure.ts'
import type { ReadFailure } from '../../engine/data/reader/failure.ts'
import { LOADED } from '../../engine/data/reader/loaded.ts'
import type { LoadedSource, WrittenSource } from '../../engine/data/reader/loaded.ts'
import type { IngestParams } from './params.ts'
import { inInterval, linkPrevious, schemaMismatch, writeVersion } from './write-version.ts'
import type { IntervalFilter } from './write-version.ts'

export interface PublishInput {
  duck: DuckDb
  params: IngestParams
  loaded: LoadedSource | WrittenSource
  datasets: Datasets
  interval: { start: Date; end: Date }
  /** The task instance running (to recognise its own earlier append after a lost report). */
  taskInstance?: { runId: string; taskId: string }
  log: OperatorLogger
  /** Described in the version's details: the source, without credentials. */
  source: Record<string, unknown>
}

export interface Published {
  dataset: string
  version: number
  rows: number
  bad_rows?: number
}

const FRESH = 'fresh'
const INCOMING = 'incoming'

export async function publishRows(input: PublishInput): Promise<Published | ReadFailure> {
  // Rows written straight into a staged folder are this attempt's own: gone on every failure.
  const written = 'written' in input.loaded ? input.loaded : undefined
  try {
    const outcome = await publishLoaded(input)
    if (written && isFailure(outcome)) await written.staged.discard()
    return outcome
  } catch (error) {
    await written?.staged.discard()
    throw error
  }
}

async function publishLoaded(input: PublishInput): Promise<Published | ReadFailure> {
  const { duck, params, loaded, log } = input
  const written = 'written' in loaded ? loaded : undefined
  const mode = params.mode ?? 'append'
  const columns: DatasetColumn[] = loaded.plans.map((p) => ({ name: p.name, type: p.type }))
  const types = new Map(columns.map((c) => [c.name, c.type]))
  const refused = checkExpectationColumns(params.expect ?? {}, types)
  if (refused) return refused

  let interval: IntervalFilter | undefined
  if (mode === 'interval') {
    const column = params.time_column
    if (column === undefined) return invalid('mode: interval needs time_column')
    const type = types.get(column)
    if (type !== 'timestamp' && type !== 'date') return invalid(`time_column ${column} ${type === undefined ? 'is not a column of the rows' : `is ${type}; it must be a timestamp or a date`}`)
    if (input.interval.start.getTime() >= input.interval.end.getTime()) {
      return invalid(`mode: interval replaces the rows of the run's data interval, and this run has none (start = end = ${input.interval.start.toISOString()}: a manual run); run it as a scheduled run or a backfill`)
    }
    interval = { column, start: input.interval.start, end: input.interval.end }
    if (written) throw new Error('rows written straight into a version cannot be filtered by interval')
  }

  const policy = { onBadRows: params.on_bad_rows ?? 'fail', maxBadRows: params.max_bad_rows ?? (params.on_bad_rows === 'quarantine' ? Number.POSITIVE_INFINITY : 0), hint: 'on_bad_rows: quarantine keeps the good ones' } as const
  const bad = await badRowsOf(duck, loaded, policy)
  if (isFailure(bad)) return bad
  if (bad.count > 0) log.warn(`quarantined ${bad.count} bad row${bad.count === 1 ? '' : 's'}: ${bad.rows.slice(0, 5).map(describeBadRow).join('; ')}`)

  const list = columns.map((c) => sqlIdent(c.name)).join(', ')
  await duck.run(written
    ? `CREATE OR REPLACE VIEW ${FRESH} AS SELECT ${list} FROM ${parquetScan(written.files)}`
    : `CREATE OR REPLACE VIEW ${FRESH} AS SELECT ${list} FROM ${LOADED} WHERE __problem IS NULL`)
  if (interval) {
    await duck.run(`CREATE OR REPLACE VIEW ${INCOMING} AS SELECT * FROM ${FRESH} WHERE coalesce(${inInterval(interval)}, false)`)
    const [outside] = await duck.rows<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM ${FRESH} WHERE NOT coalesce(${inInterval(interval)}, false)`)
    const n = Number(outside!.n)
    if (n > 0) log.info(`${n} row${n === 1 ? '' : 's'} outside the data interval [${interval.start.toISOString()}, ${interval.end.toISOString()}) by ${interval.column} left out`)
  } else {
    await duck.run(`CREATE OR REPLACE VIEW ${INCOMING} AS SELECT * FROM ${FRESH}`)
  }

  const report = await checkExpectations(duck, INCOMING, params.expect ?? {}, types)
  for (const e of report) log.info(`expectation ${e.passed ? 'passed' : 'FAILED'}: ${describeExpectation(e)}`)
  const failed = report.filter((e) => !e.passed)
  if (failed.length > 0) return dataInvalid(`${failed.length} expectation${failed.length === 1 ? '' : 's'} failed, nothing was published: ${failed.map(describeExpectation).join('; ')}`)

  const latest = mode === 'replace' ? undefined : await input.datasets.get(params.dataset)
  const previous = latest && (await ownEarlierAppend(input, latest, mode))
  if (previous) {
    const mismatch = schemaMismatch(previous, columns)
    if (mismatch) return dataInvalid(mismatch)
  }
  const [counted] = await duck.rows<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM ${INCOMING}`)
  const loadedRows = Number(counted!.n)

  const staged = written ? written.staged : await input.datasets.stage(params.dataset)
  try {
    const base = mode === 'append' ? previous : undefined
    if (written) await linkPrevious(staged.dir, base)
    else await writeVersion(duck, staged.dir, mode, columns, INCOMING, previous, interval)
    const summary = written ? { rows: loadedRows + (base?.rows ?? 0), fingerprint: await writtenFingerprint(written.files, loadedRows, base) } : undefined
    const badRows = bad.count > 0 ? { count: bad.count, location: `${relativeToDatasets(input.datasets, staged)}/${await writeBadRows(duck, staged.dir, bad.rows)}`, sample: bad.rows.slice(0, 5).map((r) => ({ ...r, raw: r.raw === null ? null : r.raw.slice(0, 500) })) } : undefined
    const inputs: DatasetInput[] = previous ? [{ dataset: previous.dataset, version: previous.version }] : []
    const [result] = await input.datasets.publish([{
      staged,
      producedKind: 'ingest',
      inputs,
      expectations: report,
      ...(badRows ? { badRows } : {}),
      details: {
        source: input.source,
        mode,
        rows_loaded: loadedRows,
        ...(previous ? { base_version: previous.version } : {}),
        ...(interval ? { interval: { column: interval.column, start: interval.start.toISOString(), end: interval.end.toISOString() } } : {}),
      },
      ...(latest ? { base: latest.version } : {}),
      declared: columns,
      ...(summary ? { summary } : {}),
    }])
    const version = result!.version
    log.info(`${result!.reused ? 'already published by an earlier attempt' : 'published'}: dataset ${version.dataset} version ${version.version}, ${version.rows} rows (${loadedRows} loaded now, mode ${mode})`)
    return { dataset: version.dataset, version: version.version, rows: version.rows, ...(bad.count > 0 ? { bad_rows: bad.count } : {}) }
  } catch (error) {
    await staged.discard()
    if (error instanceof DatasetConflict) return failure('infrastructure', true, error.message)
    throw error
  }
}

/**
 * The version these rows build on. Normally the latest; but when the latest is this very task
 * instance's own append (an earlier attempt published, then its report was lost), the append is
 * redone on the version that one was built on, so that a retry never appends the same rows twice.
 */
async function ownEarlierAppend(input: PublishInput, latest: DatasetVersion, mode: string): Promise<DatasetVersion | undefined> {
  const own = input.taskInstance && latest.runId === input.taskInstance.runId && latest.taskId === input.taskInstance.taskId && latest.producedKind === 'ingest'
  if (!own || mode !== 'append') return latest
  const base = latest.details.base_version
  return typeof base === 'number' ? input.datasets.get(latest.dataset, base) : undefined
}

function relativeToDatasets(datasets: Datasets, staged: StagedVersion): string {
  return staged.dir.slice(datasets.dir.length + 1).split('\\').join('/')
}

/**
 * The fingerprint of rows the fast path wrote, without reading them back: a digest of the files'
 * bytes (DuckDB writes the same rows of the same file to the same bytes), after the fingerprint of
 * the version appended to. A retry of the same task instance on the same file gives the same one.
 */
async function writtenFingerprint(files: readonly string[], rows: number, base: DatasetVersion | undefined): Promise<string> {
  const digest = createHash('sha256')
  if (base) digest.update(`${base.fingerprint}\n`)
  for (const file of files) {
    for await (const chunk of createReadStream(file)) digest.update(chunk as Buffer)
  }
  return `${rows + (base?.rows ?? 0)}:sha256:${digest.digest('hex')}`
}
