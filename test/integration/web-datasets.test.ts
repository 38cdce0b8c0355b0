/**
 * The dataset routes of the web API (SPEC section 7) on a real database and real Parquet files:
 * shapes, lineage followed through inputs of inputs, row previews as text, quarantined rows read
 * from their file (and a location that tries to leave the version folder refused), 404s and 400s.
 * Who may call them is checked with every other route in web-api.test.ts.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { createDatasets } from '../../engine/data/datasets.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'
import { rawRequest, startTestWeb } from '../helpers/web-client.ts'
import { seedVersion } from '../helpers/datasets.ts'
import { seedFeatureView } from '../helpers/feature-views.ts'

const dir = mkdtempSync(join(tmpdir(), 'cairn-web-datasets-'))
const cleanups: (() => Promise<void>)[] = []
let db: Db
let app: FastifyInstance
let base: string
let token: string
const get = (path: string) => rawRequest(base, 'GET', path, { headers: { authorization: `Bearer ${token}` } })
const HOSTILE = '<img src=x onerror="alert(1)">'

before(async () => {
  const log = testLogger()
  db = createDb(await createTestDatabase({ after: (fn) => void cleanups.push(fn) }), { log })
  await migrate(db, log)
  const datasets = createDatasets({ db, dir, producer: { kind: 'actor', actor: 'seed' } })
  await seedVersion(datasets, 'events', `SELECT 'u' || i AS user_id, TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL (i) HOUR AS ts, i * 1.5 AS amount FROM range(4) t(i)`, {
    expectations: { checks: [{ name: 'min_rows', passed: true }] },
    details: { source: { kind: 'csv', path: 'data/events-*.csv', files: ['data/events-1.csv'] }, mode: 'append' },
    badRowsSql: `SELECT 7::BIGINT AS line, 'amount: not a number' AS reason, 'u7,2026-01-01,abc' AS raw`,
  })
  await seedVersion(datasets, 'events', `SELECT 'u9' AS user_id, TIMESTAMPTZ '2026-01-02 00:00:00+00' AS ts, 2.5 AS amount`)
  await seedVersion(datasets, 'quarantined', `SELECT 1 AS a`, {
    badRowsSql: `SELECT 'events.csv' AS source, 'line' AS unit, 3::BIGINT AS line, 'a: not an integer' AS reason, 'x' AS raw`,
    badRowsRelativeTo: 'datasets',
  })
  await seedVersion(datasets, 'labels', `SELECT 'u1' AS user_id, TIMESTAMPTZ '2026-01-03 00:00:00+00' AS label_ts, true AS churned`, { inputs: [{ dataset: 'events', version: 1 }] })
  await seedVersion(datasets, 'churn_training', `SELECT 'u1' AS user_id, true AS churned, 3.0 AS user_activity__spend_7d`, {
    producedKind: 'features.training_set',
    inputs: [{ dataset: 'labels', version: 1 }, { feature_view: 'user_activity', definition_version: 1 }, { dataset: 'events', version: 1 }, { dataset: 'gone', version: 4 }],
  })
  await seedVersion(datasets, 'hostile', `SELECT ${`'${HOSTILE.replaceAll("'", "''")}'`} AS "${HOSTILE.replaceAll('"', '""')}"`, {
    badRows: { count: 3, location: '../../../etc/passwd' },
  })
  await seedFeatureView(db, {
    name: 'user_activity',
    definitions: [
      { definition: { entity: ['user_id'], source: 'events', timestamp: 'ts', ttl_ms: null, online: true, features: [{ name: 'spend_7d', agg: 'sum', column: 'amount', window_ms: 604800000 }] }, source: 'feature_view: user_activity\n' },
      { definition: { entity: ['user_id'], source: 'events', timestamp: 'ts', ttl_ms: 2592000000, online: true, features: [{ name: 'spend_7d', agg: 'sum', column: 'amount', window_ms: 604800000 }] }, source: 'feature_view: user_activity\nttl: 30d\n' },
    ],
    intervals: [
      { definitionVersion: 1, start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z', rows: 3, sourceDataset: 'events', sourceVersion: 1 },
      { definitionVersion: 2, start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z', rows: 3, sourceDataset: 'events', sourceVersion: 1 },
      { definitionVersion: 2, start: '2026-01-02T00:00:00Z', end: '2026-01-03T00:00:00Z', rows: 4, onlineRows: 4, sourceDataset: 'events', sourceVersion: 1, runId: 'r1', taskId: 'materialize' },
      // 01-03 .. 01-05 never materialized: a gap.
      { definitionVersion: 2, start: '2026-01-05T00:00:00Z', end: '2026-01-06T00:00:00Z', rows: 4, onlineRows: 4, sourceDataset: 'events', sourceVersion: 2 },
    ],
    online: 4,
  })
  token = (await createToken(db, { name: 'viewer', role: 'viewer' }))!.token
  ;({ app, base } = await startTestWeb({ db, log, data: { dir } }))
})

after(async () => {
  await app?.close()
  await db?.close()
  for (const step of cleanups) await step()
  rmSync(dir, { recursive: true, force: true })
})

test('GET /api/v1/datasets: every dataset with its latest version', async () => {
  const r = await get('/api/v1/datasets')
  assert.equal(r.status, 200, r.body)
  const { datasets } = r.json()
  assert.deepEqual(datasets.map((d: { name: string; version: number; rows: number }) => [d.name, d.version, d.rows]), [
    ['churn_training', 1, 1],
    ['events', 2, 1],
    ['hostile', 1, 1],
    ['labels', 1, 1],
    ['quarantined', 1, 1],
  ])
  assert.match(datasets[0].updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
})

test('GET /api/v1/datasets/{name}/versions: newest first, with schema, producer, report and bad rows', async () => {
  const r = await get('/api/v1/datasets/events/versions')
  assert.equal(r.status, 200, r.body)
  const body = r.json()
  assert.equal(body.latest_version, 2)
  assert.deepEqual(body.versions.map((v: { version: number }) => v.version), [2, 1])
  const v1 = body.versions[1]
  assert.deepEqual(Object.keys(v1).slice(0, 6), ['name', 'version', 'rows', 'columns', 'created_at', 'produced_by'])
  assert.deepEqual(v1.columns, [{ name: 'user_id', type: 'string' }, { name: 'ts', type: 'timestamp' }, { name: 'amount', type: 'number' }])
  assert.equal(v1.rows, 4)
  assert.ok(v1.bytes > 0)
  assert.equal(v1.produced_by, null)
  assert.equal(v1.actor, 'seed')
  assert.deepEqual(v1.expectations, { checks: [{ name: 'min_rows', passed: true }] })
  assert.deepEqual(v1.bad_rows, { count: 1, location: 'quarantine/bad_rows.parquet' })
  assert.equal(body.versions[0].bad_rows, null)

  assert.equal((await get('/api/v1/datasets/nope/versions')).status, 404)
  assert.equal((await get('/api/v1/datasets/nope/versions')).json().error, 'not_found')
  assert.equal((await get('/api/v1/datasets/Bad-Name/versions')).status, 400)
  assert.equal((await get('/api/v1/datasets/events/versions?limit=0')).status, 400)
})

test('lineage follows inputs of inputs once each, with feature views and missing inputs', async () => {
  const r = await get('/api/v1/datasets/churn_training/versions/1/lineage')
  assert.equal(r.status, 200, r.body)
  const { nodes, edges, truncated } = r.json()
  assert.equal(truncated, false)
  assert.deepEqual(nodes.map((n: { id: string }) => n.id).sort(), ['dataset:churn_training@1', 'dataset:events@1', 'dataset:gone@4', 'dataset:labels@1', 'feature_view:user_activity@1', 'source:events@1'])
  assert.equal(nodes.find((n: { id: string }) => n.id === 'source:events@1').name, 'csv data/events-*.csv')
  // The feature view leads on to the source version its definition 1 was materialized from.
  assert.deepEqual(edges.map((e: { from: string; to: string }) => `${e.from} -> ${e.to}`).sort(), [
    'dataset:events@1 -> dataset:churn_training@1',
    'dataset:events@1 -> dataset:labels@1',
    'dataset:events@1 -> feature_view:user_activity@1',
    'dataset:gone@4 -> dataset:churn_training@1',
    'dataset:labels@1 -> dataset:churn_training@1',
    'feature_view:user_activity@1 -> dataset:churn_training@1',
    'source:events@1 -> dataset:events@1',
  ])
  const root = nodes.find((n: { id: string }) => n.id === 'dataset:churn_training@1')
  assert.equal(root.produced_kind, 'features.training_set')
  assert.equal(nodes.find((n: { id: string }) => n.id === 'dataset:gone@4').missing, true)
  assert.equal((await get('/api/v1/datasets/churn_training/versions/9/lineage')).status, 404)
})

test('rows: a preview of the first rows as text; bad rows read from their Parquet file', async () => {
  const r = await get('/api/v1/datasets/events/versions/1/rows?limit=2')
  assert.equal(r.status, 200, r.body)
  assert.deepEqual(r.json().rows, [
    ['u0', '2026-01-01T00:00:00.000Z', '0.0'],
    ['u1', '2026-01-01T01:00:00.000Z', '1.5'],
  ])
  assert.equal(r.json().total, 4)
  assert.equal((await get('/api/v1/datasets/events/versions/1/rows?limit=101')).status, 400)
  assert.equal((await get('/api/v1/datasets/events/versions/3/rows')).status, 404)

  const bad = await get('/api/v1/datasets/events/versions/1/bad_rows')
  assert.equal(bad.status, 200, bad.body)
  assert.deepEqual(bad.json(), { name: 'events', version: 1, count: 1, location: 'quarantine/bad_rows.parquet', columns: ['line', 'reason', 'raw'], rows: [['7', 'amount: not a number', 'u7,2026-01-01,abc']] })
  const none = (await get('/api/v1/datasets/events/versions/2/bad_rows')).json()
  assert.equal(none.count, 0)
  assert.deepEqual(none.rows, [])

  // A location relative to the datasets directory (as ingest records it) is read too.
  const ingested = (await get('/api/v1/datasets/quarantined/versions/1/bad_rows')).json()
  assert.deepEqual(ingested.columns, ['source', 'unit', 'line', 'reason', 'raw'])
  assert.deepEqual(ingested.rows, [['events.csv', 'line', '3', 'a: not an integer', 'x']])
  // A location pointing out of the version folder is never read.
  const escape = (await get('/api/v1/datasets/hostile/versions/1/bad_rows')).json()
  assert.deepEqual(escape.rows, [])
  assert.match(escape.message, /outside the version folder/)
  // Column names and values are data, returned as they are (the page escapes them).
  const hostile = (await get('/api/v1/datasets/hostile/versions/1/rows')).json()
  assert.deepEqual(hostile.columns, [{ name: HOSTILE, type: 'string' }])
  assert.deepEqual(hostile.rows, [[HOSTILE]])
})

test('feature views: list, definitions, intervals with their gaps, online rows', async () => {
  const list = await get('/api/v1/feature_views')
  assert.equal(list.status, 200, list.body)
  const [view] = list.json().feature_views
  assert.equal(view.name, 'user_activity')
  assert.equal(view.definition_version, 2)
  assert.equal(view.online_rows, 4)
  assert.equal(view.materialized_intervals, 3)
  assert.equal(view.last_interval_end, '2026-01-06T00:00:00.000Z')

  const r = await get('/api/v1/feature_views/user_activity')
  assert.equal(r.status, 200, r.body)
  const body = r.json()
  assert.deepEqual(body.definitions.map((d: { version: number }) => d.version), [2, 1])
  assert.equal(body.definitions[0].definition.ttl_ms, 2592000000)
  assert.equal(body.definitions[0].source, 'feature_view: user_activity\nttl: 30d\n')
  assert.equal(body.intervals.length, 4)
  assert.deepEqual(body.intervals[0], {
    definition_version: 1, start: '2026-01-01T00:00:00.000Z', end: '2026-01-02T00:00:00.000Z', rows: 3, online_rows: null,
    source: { dataset: 'events', version: 1 }, produced_by: null, materialized_at: body.intervals[0].materialized_at,
  })
  assert.deepEqual(body.gaps, [{ definition_version: 2, start: '2026-01-03T00:00:00.000Z', end: '2026-01-05T00:00:00.000Z' }])
  assert.equal((await get('/api/v1/feature_views/nope')).status, 404)
  assert.equal((await get('/api/v1/feature_views/Nope')).status, 400)
})

test('every dataset route is in the OpenAPI document', async () => {
  const doc = (await get('/api/v1/openapi.json')).json()
  for (const path of ['/api/v1/datasets', '/api/v1/datasets/{name}/versions', '/api/v1/datasets/{name}/versions/{version}/lineage', '/api/v1/datasets/{name}/versions/{version}/rows', '/api/v1/datasets/{name}/versions/{version}/bad_rows', '/api/v1/feature_views', '/api/v1/feature_views/{view}']) {
    const op = doc.paths[path]?.get
    assert.ok(op, `${path} is documented`)
    assert.ok(op.responses['200'] && op.responses['401'] && op.responses['403'], path)
  }
})
