/**
 * The datasets service (SPEC section 7) that operators reach through OperatorContext and the CLI
 * uses for import and export. A version's rows are Parquet files in a folder of its own under the
 * datasets directory; its metadata is a row in Postgres. Writing and publishing are two steps:
 *
 *   stage(name)   a fresh folder nobody reads; the writer puts Parquet files in it
 *   publish(...)  reads the files back (row count, schema, fingerprint, unless the writer gives the
 *                 count and fingerprint) and inserts the version rows
 *                 of every staged dataset in ONE transaction, fenced by the attempt's claim
 *
 * so a reader (who finds files only through a version row) never sees half a version, a failed or
 * cancelled attempt publishes nothing, and a retry that publishes the same rows for the same task
 * instance (its first report was lost with its worker) gets the version already published.
 */
import { randomUUID } from 'node:crypto'
import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import { join, relative, resolve, sep } from 'node:path'
import type { DatasetInput, DatasetVersionRow } from '../store/datasets.ts'
import { attemptHoldsClaim, insertDatasetVersion, listDatasetVersions, listDatasets, readDatasetVersion } from '../store/datasets.ts'
import type { DatasetSummaryRow } from '../store/datasets.ts'
import type { Db } from '../store/db.ts'
import { columnTypeOf } from './column-types.ts'
import type { DatasetColumn } from './column-types.ts'
import { openDuckDb, parquetScan } from './duckdb.ts'
import { stagedFolderName } from './staged-sweep.ts'
import type { DuckDbOptions } from './duckdb.ts'

export const DATASET_NAME = /^[a-z][a-z0-9_]{0,63}$/

/** A published version, with the absolute paths of its files. */
export interface DatasetVersion extends DatasetVersionRow {
  /** Absolute folder of the version's files. */
  dir: string
  /** Its Parquet files, absolute, in name order (at least one; an empty version has one file with no rows). */
  files: string[]
}

/** Who publishes: the attempt of a task instance (fenced by its claim), or a person (CLI import). */
export type Producer =
  | { kind: 'attempt'; runId: string; taskId: string; attempt: number; claimId: string }
  | { kind: 'actor'; actor: string }

export interface StagedVersion {
  dataset: string
  /** Absolute folder to write the version's Parquet files into (`*.parquet`; other files are ignored). */
  dir: string
  /** Removes the folder and what is in it; harmless after a publish that used it. */
  discard(): Promise<void>
}

export interface PublishRequest {
  staged: StagedVersion
  /** What made the rows: the operator type, or 'import'. */
  producedKind: string
  inputs?: DatasetInput[]
  expectations?: unknown
  badRows?: DatasetVersionRow['badRows']
  details?: Record<string, unknown>
  /** The version the rows were computed from (append, interval): publishing fails if it is no longer the latest. */
  base?: number
  /** Declared types, by column name; other columns take the type read from the files. */
  declared?: readonly DatasetColumn[]
  /**
   * The row count and fingerprint, when the writer knows them already (the CSV fast path: a digest
   * of the bytes it wrote, which the same rows written the same way give again); otherwise they are
   * read back from the files (an order-independent digest of the rows).
   */
  summary?: { rows: number; fingerprint: string }
}

export interface PublishResult {
  version: DatasetVersion
  /** True when the same task instance had already published these rows (nothing new was written). */
  reused: boolean
}

/** The version a stale append or interval load was computed from is no longer the latest: retry. */
export class DatasetConflict extends Error {
  readonly dataset: string
  constructor(dataset: string, base: number, latest: number) {
    super(`dataset ${dataset} changed while this task ran (it was computed from version ${base}, version ${latest} is now the latest); retry to load on top of it`)
    this.dataset = dataset
  }
}

export interface Datasets {
  /** The datasets directory (absolute). */
  readonly dir: string
  stage(dataset: string): Promise<StagedVersion>
  publish(requests: readonly PublishRequest[]): Promise<PublishResult[]>
  /** A version (default the latest), or undefined when there is none. */
  get(name: string, version?: number): Promise<DatasetVersion | undefined>
  /** `name` (latest) or `name@N`. */
  resolve(reference: string): Promise<DatasetVersion | undefined>
  list(): Promise<DatasetSummaryRow[]>
  versions(name: string): Promise<DatasetVersion[]>
}

export interface DatasetsOptions {
  db: Db
  /** The datasets directory (data.dir, default CAIRN_HOME/datasets). */
  dir: string
  producer: Producer
  duckdb?: DuckDbOptions
}

/** `name` or `name@N`, or undefined when the reference is neither. */
export function parseDatasetReference(reference: string): { name: string; version?: number } | undefined {
  const at = reference.lastIndexOf('@')
  const name = at < 0 ? reference : reference.slice(0, at)
  if (!DATASET_NAME.test(name)) return undefined
  if (at < 0) return { name }
  const digits = reference.slice(at + 1)
  if (!/^[1-9][0-9]{0,9}$/.test(digits)) return undefined
  return { name, version: Number(digits) }
}

export function createDatasets(options: DatasetsOptions): Datasets {
  const dir = resolve(options.dir)
  const { db, producer } = options

  const withFiles = async (row: DatasetVersionRow): Promise<DatasetVersion> => {
    const folder = join(dir, row.location)
    return { ...row, dir: folder, files: await parquetFiles(folder) }
  }

  return {
    dir,
    async stage(dataset) {
      if (!DATASET_NAME.test(dataset)) throw new Error(`${JSON.stringify(dataset)} is not a dataset name (^[a-z][a-z0-9_]{0,63}$)`)
      const folder = join(dir, dataset, stagedFolderName(producer, randomUUID()))
      await mkdir(folder, { recursive: true })
      return { dataset, dir: folder, discard: () => rm(folder, { recursive: true, force: true }) }
    },

    async publish(requests) {
      const described: Described[] = []
      for (const request of requests) described.push(await describeStaged(request, options.duckdb))
      const outcomes = await db.tx(async (q) => {
        if (producer.kind === 'attempt' && !(await attemptHoldsClaim(q, producer.claimId))) {
          throw new Error('this attempt no longer holds its task instance (it was cancelled, timed out or declared lost); nothing was published')
        }
        const results = []
        for (const [i, request] of requests.entries()) {
          const d = described[i]!
          const who = producer.kind === 'attempt' ? { runId: producer.runId, taskId: producer.taskId, attempt: producer.attempt } : { actor: producer.actor }
          const outcome = await insertDatasetVersion(q, {
            dataset: request.staged.dataset,
            location: relative(dir, request.staged.dir).split(sep).join('/'),
            columns: d.columns,
            rows: d.rows,
            bytes: d.bytes,
            fingerprint: d.fingerprint,
            producedKind: request.producedKind,
            ...who,
            inputs: request.inputs ?? [],
            ...(request.expectations !== undefined ? { expectations: request.expectations } : {}),
            ...(request.badRows !== undefined ? { badRows: request.badRows } : {}),
            ...(request.details !== undefined ? { details: request.details } : {}),
          }, request.base)
          if (outcome.kind === 'stale_base') throw new DatasetConflict(request.staged.dataset, request.base!, outcome.latest)
          results.push(outcome)
        }
        return results
      })
      const published: PublishResult[] = []
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome.kind === 'reused') await requests[i]!.staged.discard()
        published.push({ version: await withFiles(outcome.row), reused: outcome.kind === 'reused' })
      }
      return published
    },

    async get(name, version) {
      const row = await readDatasetVersion(db, name, version)
      return row && withFiles(row)
    },
    async resolve(reference) {
      const parsed = parseDatasetReference(reference)
      if (!parsed) return undefined
      const row = await readDatasetVersion(db, parsed.name, parsed.version)
      return row && withFiles(row)
    },
    list: () => listDatasets(db),
    async versions(name) {
      return Promise.all((await listDatasetVersions(db, name)).map(withFiles))
    },
  }
}

async function parquetFiles(folder: string): Promise<string[]> {
  const names = await readdir(folder).catch(() => [] as string[])
  return names.filter((n) => n.endsWith('.parquet')).sort().map((n) => join(folder, n))
}

/** Row count, schema, size and an order-independent digest of the staged files, read back from disk. */
interface Described {
  columns: DatasetColumn[]
  rows: number
  bytes: number
  fingerprint: string
}

async function describeStaged(request: PublishRequest, duckdb: DuckDbOptions | undefined): Promise<Described> {
  const files = await parquetFiles(request.staged.dir)
  if (files.length === 0) throw new Error(`nothing to publish for dataset ${request.staged.dataset}: no Parquet file was written`)
  let bytes = 0
  for (const file of files) bytes += (await stat(file)).size
  const duck = await openDuckDb(duckdb)
  try {
    const scan = parquetScan(files)
    const schema = await duck.rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM ${scan}`)
    const declared = new Map((request.declared ?? []).map((c) => [c.name, c.type]))
    const columns: DatasetColumn[] = schema.map((c) => {
      const type = declared.get(c.column_name) ?? columnTypeOf(c.column_type)
      if (type === undefined) throw new Error(`column ${c.column_name} of dataset ${request.staged.dataset} has type ${c.column_type}, which a dataset cannot hold`)
      return { name: c.column_name, type }
    })
    if (request.summary) return { columns, bytes, ...request.summary }
    const [summary] = await duck.rows<{ n: string; fp: string | null }>(`SELECT count(*)::VARCHAR AS n, sum(hash(t)::HUGEINT)::VARCHAR AS fp FROM ${scan} t`)
    return { columns, rows: Number(summary!.n), bytes, fingerprint: `${summary!.n}:${summary!.fp ?? '0'}` }
  } finally {
    duck.close()
  }
}
