/**
 * Feature view benchmarks, each beside its raw baseline in the same run (issue 10, acceptance 4):
 *   materialize   1M events into 100k entities for one interval end (four features: sum over 7d,
 *                 count over 1d, avg over 30d, last country), offline only and with the online store,
 *                 vs the same aggregation written by hand as one DuckDB query into Parquet
 *                 (goal: offline materialize <= 1.5x the hand-written query)
 *   training set  100k labels x 3 views (each materialized at 5 interval ends: 500k offline rows per
 *                 view), through features.training_set (join + Parquet + publish), vs one hand-written
 *                 ASOF JOIN of the same files into Parquet (goal <= 1.5x)
 * Medians of REPEAT runs. Usage: node bench/features.ts [--events N] [--entities N] [--labels N] [--repeat N]
 * Prints figures; never pass/fail.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { silentLogger } from '../engine/log.ts'
import { createDatasets } from '../engine/data/datasets.ts'
import { openDuckDb, sqlString } from '../engine/data/duckdb.ts'
import { createFeatureStore } from '../engine/data/feature-store.ts'
import { normalizeFeatureView } from '../engine/data/feature-definition.ts'
import { createDb } from '../engine/store/db.ts'
import { startEmbeddedPostgres } from '../engine/store/embedded.ts'
import { migrate } from '../engine/store/migrate.ts'
import { listMaterializations } from '../engine/store/feature-materializations.ts'
import { saveFeatureViews } from '../engine/store/feature-views.ts'

const { values } = parseArgs({ options: { events: { type: 'string', default: '1000000' }, entities: { type: 'string', default: '100000' }, labels: { type: 'string', default: '100000' }, repeat: { type: 'string', default: '3' } } })
const EVENTS = Number(values.events)
const ENTITIES = Number(values.entities)
const LABELS = Number(values.labels)
const REPEAT = Number(values.repeat)
const DAY = 86_400_000
const log = silentLogger()

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const timed = async (f: () => Promise<unknown>): Promise<number> => {
  const started = performance.now()
  await f()
  return performance.now() - started
}
const line = (label: string, ms: number, base?: number): void =>
  console.log(`  ${label.padEnd(52)} ${(ms / 1000).toFixed(2).padStart(6)} s${base === undefined ? '' : `   ${(ms / base).toFixed(2)}x the hand-written query`}`)

const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-features-'))
const pg = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), log, ephemeral: true })
const db = createDb(pg.url, { log, max: 4 })
try {
  await migrate(db, log)
  const datasets = createDatasets({ db, dir: join(dir, 'datasets'), producer: { kind: 'actor', actor: 'bench' } })
  const store = createFeatureStore({ db, datasets, producer: { kind: 'actor', actor: 'bench' } })
  const END = new Date('2026-02-01T00:00:00Z')

  // 1M events over 60 days before END, 100k users.
  const events = await datasets.stage('events')
  const duck = await openDuckDb()
  await duck.run(`COPY (SELECT 'u' || (hash(i) % ${ENTITIES}) AS user_id,
      TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL ((hash(i * 7) % (${60 * 86400}))::BIGINT) SECOND - INTERVAL 29 DAY AS ts,
      (hash(i * 13) % 10000) / 100.0 AS amount, ['DE', 'FR', 'IT', 'ES', 'PL'][(1 + hash(i * 17) % 5)::BIGINT] AS country
    FROM range(${EVENTS}) t(i)) TO ${sqlString(join(events.dir, 'part-0.parquet'))} (FORMAT parquet, COMPRESSION zstd)`)
  const [source] = await datasets.publish([{ staged: events, producedKind: 'import' }])
  const files = source!.version.files
  console.log(`feature benchmarks: ${EVENTS.toLocaleString('en')} events, ${ENTITIES.toLocaleString('en')} entities, node ${process.version}, median of ${REPEAT}`)

  const view = (name: string, online: boolean, features: Record<string, unknown>) => ({ feature_view: name, entity: ['user_id'], source: 'events', timestamp: 'ts', ttl: '30d', online, features })
  const ACTIVITY = { spend_7d: { agg: 'sum', column: 'amount', window: '7d' }, events_1d: { agg: 'count', window: '1d' }, avg_amount: { agg: 'avg', column: 'amount', window: '30d' }, last_country: { agg: 'last', column: 'country' } }
  const defs = [
    view('activity', false, ACTIVITY),
    view('activity_online', true, ACTIVITY),
    view('spend', false, { spend_30d: { agg: 'sum', column: 'amount', window: '30d' }, max_amount: { agg: 'max', column: 'amount', window: '7d' } }),
    view('countries', false, { countries_7d: { agg: 'count_distinct', column: 'country', window: '7d' }, first_country: { agg: 'first', column: 'country' } }),
  ]
  await db.tx((q) => saveFeatureViews(q, defs.map((y) => {
    const v = normalizeFeatureView(y)
    return { name: v.name, file: `${v.name}.yaml`, hash: v.hash, definitionJson: v.definitionJson, source: '', description: null, owner: null, tags: [] }
  })))

  // ---- materialize
  const ts = (ms: number) => `${sqlString(new Date(ms).toISOString())}::TIMESTAMPTZ`
  const e = END.getTime()
  const handWritten = `COPY (SELECT user_id, ${ts(e)} AS feature_timestamp,
      sum(amount) FILTER (WHERE ts >= ${ts(e - 7 * DAY)}) AS spend_7d,
      count(*) FILTER (WHERE ts >= ${ts(e - DAY)}) AS events_1d,
      avg(amount) FILTER (WHERE ts >= ${ts(e - 30 * DAY)}) AS avg_amount,
      arg_max(country, ts) AS last_country
    FROM read_parquet([${files.map(sqlString).join(', ')}]) WHERE ts < ${ts(e)} GROUP BY user_id)
    TO ${sqlString(join(dir, 'hand.parquet'))} (FORMAT parquet, COMPRESSION zstd)`
  const raw: number[] = []
  const offline: number[] = []
  const online: number[] = []
  for (let i = 0; i < REPEAT; i++) {
    raw.push(await timed(() => duck.run(handWritten)))
    offline.push(await timed(() => store.materialize({ view: 'activity', intervalStart: new Date(e - DAY), intervalEnd: END })))
    online.push(await timed(() => store.materialize({ view: 'activity_online', intervalStart: new Date(e - DAY), intervalEnd: END })))
  }
  const rows = (await listMaterializations(db, 'activity'))[0]!.rows
  console.log(`materialize one interval (${rows.toLocaleString('en')} entity rows, 4 features)`)
  line('hand-written DuckDB query -> Parquet', median(raw))
  line('features.materialize, offline only', median(offline), median(raw))
  line('features.materialize, offline + online store', median(online), median(raw))

  // ---- training set: 3 views x 5 interval ends
  const ends = Array.from({ length: 5 }, (_, i) => new Date(e - (4 - i) * DAY))
  const trainingViews = ['activity', 'spend', 'countries']
  for (const name of trainingViews) for (const end of ends) await store.materialize({ view: name, intervalStart: new Date(end.getTime() - DAY), intervalEnd: end })
  const labels = await datasets.stage('labels')
  await duck.run(`COPY (SELECT 'u' || (hash(i * 31) % ${Math.round(ENTITIES * 1.05)}) AS user_id,
      ${ts(e - 5 * DAY)} + INTERVAL ((hash(i * 37) % ${6 * 86400})::BIGINT) SECOND AS label_ts, hash(i) % 2 = 0 AS churned
    FROM range(${LABELS}) t(i)) TO ${sqlString(join(labels.dir, 'part-0.parquet'))} (FORMAT parquet)`)
  const [labelVersion] = await datasets.publish([{ staged: labels, producedKind: 'import' }])
  const offlineFiles = async (name: string) => (await listMaterializations(db, name)).map((m) => sqlString(join(datasets.dir, m.location, 'part-0.parquet'))).join(', ')
  const features: Record<string, string[]> = { activity: ['spend_7d', 'events_1d', 'avg_amount', 'last_country'], spend: ['spend_30d', 'max_amount'], countries: ['countries_7d', 'first_country'] }
  const ttlUs = 30n * BigInt(DAY) * 1000n
  let ctes = ''
  let joins = ''
  const cols: string[] = []
  for (const [i, name] of trainingViews.entries()) {
    ctes += `, f${i} AS (SELECT user_id, feature_timestamp, ${features[name]!.join(', ')} FROM read_parquet([${await offlineFiles(name)}]))`
    joins += ` ASOF LEFT JOIN f${i} ON l.user_id = f${i}.user_id AND l.label_ts >= f${i}.feature_timestamp`
    for (const f of features[name]!) cols.push(`CASE WHEN epoch_us(f${i}.feature_timestamp) >= epoch_us(l.label_ts) - ${ttlUs} THEN f${i}.${f} END AS ${name}__${f}`)
  }
  const handJoin = `COPY (WITH l AS (SELECT *, row_number() OVER () AS pos FROM read_parquet([${labelVersion!.version.files.map(sqlString).join(', ')}]))${ctes}
    SELECT l.user_id, l.label_ts, l.churned, ${cols.join(', ')} FROM l ${joins} ORDER BY l.pos)
    TO ${sqlString(join(dir, 'hand-join.parquet'))} (FORMAT parquet, COMPRESSION zstd)`
  const rawJoin: number[] = []
  const ours: number[] = []
  for (let i = 0; i < REPEAT; i++) {
    rawJoin.push(await timed(() => duck.run(handJoin)))
    ours.push(await timed(() => store.trainingSet({ labels: 'labels', timestamp: 'label_ts', label: 'churned', features: trainingViews, dataset: 'training' })))
  }
  console.log(`training set: ${LABELS.toLocaleString('en')} labels x 3 views (${(rows * ends.length).toLocaleString('en')} offline rows per view)`)
  line('hand-written ASOF JOIN -> Parquet', median(rawJoin))
  line('features.training_set (join, Parquet, publish)', median(ours), median(rawJoin))
  duck.close()
} finally {
  await db.close()
  await pg.stop()
  rmSync(dir, { recursive: true, force: true })
}
