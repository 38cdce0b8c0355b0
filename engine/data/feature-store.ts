/**
 * The feature store facade operators reach through OperatorContext.data (Feast's FeatureStore): the
 * catalog of feature view definitions (stored by the DAG sync, read from Postgres), materialization
 * (offline-store.ts computes, this records), the point-in-time training set, and the online store.
 *
 * Offline rows of one (view, definition version, interval end) are one Parquet file in a fresh
 * folder `<datasets dir>/_features/<view>/d<version>/<end>/<uuid>/`; its row in
 * cairn.feature_materialization is what makes it visible. Recording it (and the online rows) is one
 * transaction fenced by the attempt's claim: a cancelled or lost attempt changes nothing, and the
 * folder a re-materialization replaced is removed after the commit.
 */
import { randomUUID } from 'node:crypto'
import { FeatureRequestError } from './feature-request-error.ts'
import { mkdir, rm } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import type { Db } from '../store/db.ts'
import { attemptHoldsClaim } from '../store/datasets.ts'
import type { DatasetInput } from '../store/datasets.ts'
import { listMaterializations, replaceMaterialization } from '../store/feature-materializations.ts'
import type { MaterializationRow } from '../store/feature-materializations.ts'
import { readFeatureView, readFeatureViewDefinition } from '../store/feature-views.ts'
import { DATASET_NAME } from './datasets.ts'
import type { Datasets, Producer, PublishRequest, PublishResult } from './datasets.ts'
import { openDuckDb, sqlIdent, sqlString } from './duckdb.ts'
import type { DuckDb, DuckDbOptions } from './duckdb.ts'
import { canonicalEntityKey } from './entity-key.ts'
import { definitionProblems } from './feature-definition.ts'
import type { FeatureSpec, FeatureViewDefinition } from './feature-definition.ts'
import type { ColumnType } from './column-types.ts'
import { copyToParquet, holdoutMacros, materializeSelect, missingSourceColumns, trainingSetSelect } from './offline-store.ts'
import type { JoinedView } from './offline-store.ts'
import { createOnlineStore } from './online-store.ts'
import type { OnlineStore } from './online-store.ts'
import { readOnlineWindow, writeOnlineRows } from '../store/feature-online.ts'
import type { OnlineRowWrite } from '../store/feature-online.ts'
import { stagedFolderName } from './staged-sweep.ts'

/** A view as workers see it: its current definition, from the database. */
export interface FeatureViewEntry {
  name: string
  version: number
  definition: FeatureViewDefinition
  removed: boolean
}

export interface FeatureViewCatalog {
  /** The view's current definition, or undefined when no file ever defined it. */
  get(name: string): Promise<FeatureViewEntry | undefined>
  /** Materialized intervals of a definition version (default the current one), oldest first. */
  intervals(name: string, version?: number): Promise<MaterializationRow[]>
}

export { FeatureRequestError }

export interface MaterializeRequest {
  view: string
  /** Stops the DuckDB query (cancel, timeout); nothing is recorded then. */
  signal?: AbortSignal
  intervalStart: Date
  intervalEnd: Date
  /** Refresh the online store; default the view's `online`. */
  online?: boolean
  log?: (message: string, fields?: Record<string, unknown>) => void
}

export interface MaterializeResult {
  view: string
  definitionVersion: number
  rowsOffline: number
  /** Online rows written (newer or equal to what was there); null when offline only. */
  rowsOnline: number | null
  source: { dataset: string; version: number }
}

export interface TrainingSetRequest {
  labels: string
  timestamp: string
  label: string
  /** `view.feature` or `view`. */
  features: readonly string[]
  dataset: string
  split?: { holdout: number; seed?: number }
  /** Only the label rows with a timestamp in [start, end). @default every row */
  labelsWindow?: { start: Date; end: Date }
  /** Stops the DuckDB query (cancel, timeout); nothing is published then. */
  signal?: AbortSignal
  log?: (message: string, fields?: Record<string, unknown>) => void
}

export interface TrainingSetResult {
  published: PublishResult
  holdout?: PublishResult
  inputs: DatasetInput[]
}

/** The type of a feature's values as online rows hold them (JSON numbers, booleans or strings). */
export type OnlineFeatureType = 'number' | 'boolean' | 'string'

/** The online rows of a view's current definition materialized in a window (evaluate.drift's current side). */
export interface OnlineWindow {
  view: string
  definitionVersion: number
  /** The window asked: rows with a feature timestamp in (start, end]. */
  start: Date
  end: Date
  /** When the view has a ttl shorter than the window: rows before this instant (expired at `end`) were left out. */
  expiredBefore: Date | null
  /** The definition's features in file order, with the type of their values. */
  features: { name: string; type: OnlineFeatureType }[]
  /** Ordered by entity key. */
  rows: { entity: Record<string, unknown>; features: Record<string, unknown>; featureTimestamp: Date }[]
}

export interface FeatureStore {
  views: FeatureViewCatalog
  online: OnlineStore
  materialize(request: MaterializeRequest): Promise<MaterializeResult>
  trainingSet(request: TrainingSetRequest): Promise<TrainingSetResult>
  /**
   * The online store's rows of the view's current definition version whose feature timestamp lies in
   * (start, end], leaving out rows already expired at `end` (older than the view's ttl).
   */
  onlineWindow(view: string, start: Date, end: Date): Promise<OnlineWindow>
}

export interface FeatureStoreOptions {
  db: Db
  datasets: Datasets
  producer: Producer
  duckdb?: DuckDbOptions
  now?: () => Date
}

export function createFeatureStore(options: FeatureStoreOptions): FeatureStore {
  const { db, datasets, producer } = options
  const root = join(datasets.dir, '_features')

  const views: FeatureViewCatalog = {
    async get(name) {
      const [view, definition] = await Promise.all([readFeatureView(db, name), readFeatureViewDefinition(db, name)])
      if (!view || !definition) return undefined
      return { name, version: definition.version, definition: definition.definition, removed: view.removed }
    },
    async intervals(name, version) {
      const v = version ?? (await readFeatureView(db, name))?.currentVersion
      return v === undefined ? [] : listMaterializations(db, name, v)
    },
  }

  const withDuck = async <T>(signal: AbortSignal | undefined, f: (duck: DuckDb) => Promise<T>): Promise<T> => {
    signal?.throwIfAborted()
    const duck = await openDuckDb(options.duckdb)
    const interrupt = () => duck.connection.interrupt()
    signal?.addEventListener('abort', interrupt, { once: true })
    try {
      const result = await f(duck)
      signal?.throwIfAborted()
      return result
    } finally {
      signal?.removeEventListener('abort', interrupt)
      duck.close()
    }
  }

  async function materialize(request: MaterializeRequest): Promise<MaterializeResult> {
    const view = await views.get(request.view)
    if (!view) throw new FeatureRequestError(`feature view ${request.view} is not defined (no valid feature view file in the DAG folder declares it)`)
    if (view.removed) throw new FeatureRequestError(`feature view ${request.view} was removed (its file is gone or declares something else)`)
    const d = view.definition
    const problems = definitionProblems(d)
    if (problems.length > 0) throw new FeatureRequestError(`feature view ${view.name}: ${problems.join('; ')}`)
    const source = await datasets.get(d.source)
    if (!source) throw new FeatureRequestError(`feature view ${view.name}: its source dataset ${d.source} has no version yet`)
    const missing = missingSourceColumns(d, source.columns)
    if (missing.length > 0) throw new FeatureRequestError(`feature view ${view.name}: source ${d.source}@${source.version} lacks ${missing.join(', ')}`)
    const end = request.intervalEnd
    const online = request.online ?? d.online

    const folder = join(root, view.name, `d${view.version}`, end.toISOString().replaceAll(':', ''), stagedFolderName(producer, randomUUID()))
    await mkdir(folder, { recursive: true })
    let published = false
    try {
      const file = join(folder, 'part-0.parquet')
      const started = performance.now()
      const { rows, onlineRows, computeMs } = await withDuck(request.signal, async (duck) => {
        const count = await copyToParquet(duck, materializeSelect(d, source.files, source.columns, end), file)
        const computeMs = Math.round(performance.now() - started)
        return { rows: count, onlineRows: online ? await readOnlineRows(duck, file, d) : undefined, computeMs }
      })
      const readMs = Math.round(performance.now() - started) - computeMs
      request.log?.(`materialized ${rows} rows of ${view.name} (definition ${view.version}) as of ${end.toISOString()} from ${d.source}@${source.version}`, { compute_ms: computeMs, ...(online ? { online_read_ms: readMs } : {}) })
      const location = relative(datasets.dir, folder).split(sep).join('/')
      const { replaced, written } = await db.tx(async (q) => {
        if (producer.kind === 'attempt' && !(await attemptHoldsClaim(q, producer.claimId))) {
          throw new Error('this attempt no longer holds its task instance (it was cancelled, timed out or declared lost); nothing was materialized')
        }
        const written = onlineRows === undefined ? null : await writeOnlineRows(q, view.name, view.version, end, onlineRows)
        const who = producer.kind === 'attempt' ? { runId: producer.runId, taskId: producer.taskId, attempt: producer.attempt } : { runId: null, taskId: null, attempt: null }
        const replaced = await replaceMaterialization(q, {
          view: view.name,
          definitionVersion: view.version,
          intervalStart: request.intervalStart,
          intervalEnd: end,
          location,
          rows,
          sourceDataset: d.source,
          sourceVersion: source.version,
          onlineRows: written,
          ...who,
        })
        return { replaced, written }
      })
      published = true
      request.log?.(`recorded ${view.name} as of ${end.toISOString()}${written === null ? '' : `, ${written} online rows written`}`, { record_ms: Math.round(performance.now() - started) - computeMs - readMs })
      if (replaced !== undefined) await rm(join(datasets.dir, replaced), { recursive: true, force: true })
      return { view: view.name, definitionVersion: view.version, rowsOffline: rows, rowsOnline: written, source: { dataset: d.source, version: source.version } }
    } finally {
      if (!published) await rm(folder, { recursive: true, force: true })
    }
  }

  async function trainingSet(request: TrainingSetRequest): Promise<TrainingSetResult> {
    const holdoutName = `${request.dataset}_holdout`
    if (request.split && !DATASET_NAME.test(holdoutName)) {
      throw new FeatureRequestError(`split writes the holdout dataset ${holdoutName}, which is not a dataset name (at most 64 characters: ^[a-z][a-z0-9_]{0,63}$); shorten dataset`)
    }
    const labels = await datasets.resolve(request.labels)
    if (!labels) throw new FeatureRequestError(`labels dataset ${request.labels} has no version`)
    const labelNames = new Set(labels.columns.map((c) => c.name))
    for (const [what, column] of [['timestamp', request.timestamp], ['label', request.label]] as const) {
      if (!labelNames.has(column)) throw new FeatureRequestError(`labels dataset ${labels.dataset}@${labels.version} has no ${what} column ${column} (columns: ${[...labelNames].join(', ')})`)
    }
    const wanted = await selectFeatures(request.features)
    const inputs: DatasetInput[] = [{ dataset: labels.dataset, version: labels.version }]
    const joined: JoinedView[] = []
    for (const { view, features } of wanted) {
      for (const e of view.definition.entity) {
        if (!labelNames.has(e)) throw new FeatureRequestError(`labels dataset ${labels.dataset} lacks column ${e}, an entity column of feature view ${view.name}`)
      }
      inputs.push({ feature_view: view.name, definition_version: view.version })
      const intervals = await listMaterializations(db, view.name, view.version)
      const files = intervals.map((m) => join(datasets.dir, m.location, 'part-0.parquet'))
      if (files.length === 0) request.log?.(`feature view ${view.name} (definition ${view.version}) has no materialized interval: its features are null`)
      joined.push({ name: view.name, definition: view.definition, files, entityTypes: undefined, features })
    }

    const main = await datasets.stage(request.dataset)
    const holdout = request.split ? await datasets.stage(holdoutName) : undefined
    try {
      await withDuck(request.signal, async (duck) => {
        for (const v of joined) {
          if (v.files.length === 0) continue
          const schema = await duck.rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM read_parquet(${sqlString(v.files[0]!)})`)
          v.entityTypes = new Map(schema.filter((c) => v.definition.entity.includes(c.column_name)).map((c) => [c.column_name, c.column_type]))
        }
        const select = trainingSetSelect({ files: labels.files, columns: labels.columns, timestamp: request.timestamp, ...(request.labelsWindow ? { window: request.labelsWindow } : {}) }, joined)
        const columns = [...labels.columns.map((c) => c.name), ...joined.flatMap((v) => v.features.map((f) => `${v.name}__${f}`))].map(sqlIdent).join(', ')
        if (!request.split) {
          await copyToParquet(duck, `SELECT ${columns} FROM (${select}) ORDER BY __i`, join(main.dir, 'part-0.parquet'))
          return
        }
        for (const statement of holdoutMacros(request.split.seed ?? 0)) await duck.run(statement)
        await duck.run(`CREATE TEMP TABLE __joined AS SELECT *, __held(__i, ${Number(request.split.holdout)}) AS __h FROM (${select})`)
        await copyToParquet(duck, `SELECT ${columns} FROM __joined WHERE NOT __h ORDER BY __i`, join(main.dir, 'part-0.parquet'))
        await copyToParquet(duck, `SELECT ${columns} FROM __joined WHERE __h ORDER BY __i`, join(holdout!.dir, 'part-0.parquet'))
      })
      const window = request.labelsWindow ? { labels_window: { start: request.labelsWindow.start.toISOString(), end: request.labelsWindow.end.toISOString() } } : {}
      const details = { labels: `${labels.dataset}@${labels.version}`, label: request.label, timestamp: request.timestamp, ...(request.split ? { split: request.split } : {}), ...window }
      const requests: PublishRequest[] = [{ staged: main, producedKind: 'features.training_set', inputs, details }]
      if (holdout) requests.push({ staged: holdout, producedKind: 'features.training_set', inputs, details: { ...details, holdout_of: request.dataset } })
      const published = await datasets.publish(requests)
      return { published: published[0]!, ...(published[1] ? { holdout: published[1] } : {}), inputs }
    } catch (error) {
      await main.discard()
      await holdout?.discard()
      throw error
    }
  }

  async function onlineWindow(name: string, start: Date, end: Date): Promise<OnlineWindow> {
    const view = await views.get(name)
    if (!view) throw new FeatureRequestError(`feature view ${name} is not defined (no valid feature view file in the DAG folder declares it)`)
    if (view.removed) throw new FeatureRequestError(`feature view ${name} was removed (its file is gone or declares something else)`)
    const d = view.definition
    const expiredBefore = d.ttl_ms !== null && end.getTime() - d.ttl_ms > start.getTime() ? new Date(end.getTime() - d.ttl_ms) : null
    const rows = await readOnlineWindow(db, name, view.version, start, end, expiredBefore)
    // The source column's type for min/max/first/last: from the source version the newest materialization read.
    const newest = (await listMaterializations(db, name, view.version)).at(-1)
    const source = newest ? await datasets.get(newest.sourceDataset, newest.sourceVersion) : await datasets.get(d.source)
    const sourceTypes = new Map((source?.columns ?? []).map((c) => [c.name, c.type]))
    const features = d.features.map((f) => ({ name: f.name, type: onlineFeatureType(f, f.column === null ? undefined : sourceTypes.get(f.column), rows.map((r) => r.features[f.name])) }))
    return {
      view: name,
      definitionVersion: view.version,
      start,
      end,
      expiredBefore,
      features,
      rows: rows.map((r) => ({ entity: r.entity, features: r.features, featureTimestamp: r.featureTimestamp })),
    }
  }

  /** Resolves `view.feature` / `view` references to views and feature lists, in the order given (a feature once). */
  async function selectFeatures(references: readonly string[]): Promise<{ view: FeatureViewEntry; features: string[] }[]> {
    const out: { view: FeatureViewEntry; features: string[] }[] = []
    for (const reference of references) {
      const dot = reference.indexOf('.')
      const name = dot < 0 ? reference : reference.slice(0, dot)
      let entry = out.find((o) => o.view.name === name)
      if (!entry) {
        const view = await views.get(name)
        if (!view) throw new FeatureRequestError(`feature view ${name} (in features: ${reference}) is not defined`)
        entry = { view, features: [] }
        out.push(entry)
      }
      const known = entry.view.definition.features.map((f) => f.name)
      const add = dot < 0 ? known : [reference.slice(dot + 1)]
      for (const feature of add) {
        if (!known.includes(feature)) throw new FeatureRequestError(`feature view ${name} has no feature ${feature} (features: ${known.join(', ')})`)
        if (!entry.features.includes(feature)) entry.features.push(feature)
      }
    }
    return out
  }

  return { views, online: createOnlineStore(db, options.now ? { now: options.now } : {}), materialize, trainingSet, onlineWindow }
}

const NUMERIC_AGGS = new Set<FeatureSpec['agg']>(['sum', 'count', 'avg', 'count_distinct', 'stddev'])

/**
 * A feature's value type: a number for the numeric aggregates; for min, max, first and last the source
 * column's (timestamps and dates are ISO text); without a known source type, what the values are.
 */
export function onlineFeatureType(f: FeatureSpec, sourceType: ColumnType | undefined, values: readonly unknown[]): OnlineFeatureType {
  if (NUMERIC_AGGS.has(f.agg)) return 'number'
  if (sourceType !== undefined) return sourceType === 'integer' || sourceType === 'number' ? 'number' : sourceType === 'boolean' ? 'boolean' : 'string'
  const present = values.filter((v) => v !== null && v !== undefined)
  if (present.length > 0 && present.every((v) => typeof v === 'number')) return 'number'
  if (present.length > 0 && present.every((v) => typeof v === 'boolean')) return 'boolean'
  return 'string'
}

/** The materialized rows of one interval as online writes (entity and feature values as JSON). */
async function readOnlineRows(duck: DuckDb, file: string, d: FeatureViewDefinition): Promise<OnlineRowWrite[]> {
  const schema = await duck.rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM read_parquet(${sqlString(file)})`)
  const types = new Map(schema.map((c) => [c.column_name, c.column_type]))
  const names = [...d.entity, ...d.features.map((f) => f.name)]
  const values = await duck.values(`SELECT ${names.map(sqlIdent).join(', ')} FROM read_parquet(${sqlString(file)})`)
  const out: OnlineRowWrite[] = []
  const entityCount = d.entity.length
  for (const row of values) {
    const entity: Record<string, unknown> = {}
    const features: Record<string, unknown> = {}
    for (let i = 0; i < names.length; i++) {
      const json = toJson(row[i], types.get(names[i]!) ?? '')
      if (i < entityCount) entity[names[i]!] = json
      else features[names[i]!] = json
    }
    const key = canonicalEntityKey(d.entity.map((e) => entity[e]))
    if (key !== undefined) out.push({ key, entity, features })
  }
  // One order for every writer: two materializations of the same view upserting at once then lock
  // rows in the same order and cannot deadlock.
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
}

/** A DuckDB JS value as JSON: BIGINT as a number when exact (else its text), TIMESTAMPTZ as ISO-8601, DATE as YYYY-MM-DD. */
export function toJson(value: unknown, duckType: string): unknown {
  if (value === null || value === undefined) return null
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()
  if (value instanceof Date) return duckType === 'DATE' ? value.toISOString().slice(0, 10) : value.toISOString()
  if (typeof value === 'number') return Number.isFinite(value) ? value : null
  return value
}
