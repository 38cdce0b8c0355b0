/**
 * Feature views on real Postgres and real Parquet, checked cell by cell against tables computed in
 * this file from the words of SPEC section 7 (plain JS, never by the code under test):
 * materialization (every aggregation, empty windows, half-open windows at midnight, late data, ties),
 * idempotent re-materialization, the online store (newest wins, ttl), the point-in-time training set
 * (ttl, exactly-ttl-old rows, unknown and null entities, duplicate and unordered labels, several
 * views) with its seeded holdout, and definition versions.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { createDatasets } from '../../engine/data/datasets.ts'
import type { Datasets } from '../../engine/data/datasets.ts'
import { openDuckDb, sqlString } from '../../engine/data/duckdb.ts'
import { createFeatureStore, FeatureRequestError } from '../../engine/data/feature-store.ts'
import { normalizeFeatureView } from '../../engine/data/feature-definition.ts'
import { saveFeatureViews, listFeatureViewDefinitions } from '../../engine/store/feature-views.ts'
import { listMaterializations } from '../../engine/store/feature-materializations.ts'
import { countOnlineRows } from '../../engine/store/feature-online.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'

// ---------------------------------------------------------------- data helpers

type Cell = string | number | boolean | null | Date
type Row = Record<string, Cell>

const D = (iso: string): Date => new Date(iso)
const DAY = 86_400_000

/** Writes rows (all with the same keys, typed by `types`) as one Parquet file, in order, and publishes it. */
async function publishRows(datasets: Datasets, name: string, types: Record<string, string>, rows: readonly Row[]): Promise<void> {
  const staged = await datasets.stage(name)
  const cols = Object.keys(types)
  const literal = (v: Cell, type: string): string => {
    if (v === null) return `NULL::${type}`
    if (v instanceof Date) return `${sqlString(v.toISOString())}::TIMESTAMPTZ`
    if (typeof v === 'string') return `${sqlString(v)}::${type}`
    return `${String(v)}::${type}`
  }
  const values = rows.map((r) => `(${cols.map((c) => literal(r[c] ?? null, types[c]!)).join(', ')})`).join(',\n')
  const duck = await openDuckDb({ threads: 1 })
  try {
    await duck.run(`COPY (SELECT * FROM (VALUES ${values}) t(${cols.map((c) => `"${c}"`).join(', ')})) TO ${sqlString(join(staged.dir, 'part-0.parquet'))} (FORMAT parquet)`)
  } finally {
    duck.close()
  }
  await datasets.publish([{ staged, producedKind: 'import' }])
}

/** Every row of Parquet files, in file order, as plain values (numbers, strings, Dates, null). */
async function readParquet(files: readonly string[], orderBy?: string): Promise<Row[]> {
  const duck = await openDuckDb({ threads: 1 })
  try {
    const result = await duck.connection.run(`SELECT * FROM read_parquet([${files.map(sqlString).join(', ')}])${orderBy ? ` ORDER BY ${orderBy}` : ''}`)
    const names = result.columnNames()
    const rows = (await result.getRowsJS()) as unknown[][]
    return rows.map((r) => Object.fromEntries(names.map((n, i) => [n, typeof r[i] === 'bigint' ? Number(r[i]) : (r[i] as Cell)])))
  } finally {
    duck.close()
  }
}

/** Cell comparison: numbers to 1e-9 relative (sums of doubles depend on order), Dates by instant. */
function sameCell(a: Cell | undefined, b: Cell | undefined): boolean {
  if (a === null || a === undefined || b === null || b === undefined) return (a ?? null) === (b ?? null)
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime()
  if (typeof a === 'number' && typeof b === 'number') return a === b || Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b))
  return a === b
}

function assertTable(actual: readonly Row[], expected: readonly Row[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} rows, expected ${expected.length}`)
  expected.forEach((e, i) => {
    const a = actual[i]!
    assert.deepEqual(Object.keys(a), Object.keys(e), `${what}: columns of row ${i}`)
    for (const k of Object.keys(e)) {
      assert.ok(sameCell(a[k], e[k]), `${what}: row ${i} column ${k}: got ${String(a[k])}, expected ${String(e[k])} (row ${JSON.stringify(e)})`)
    }
  })
}

// ---------------------------------------------------------------- the SPEC, in plain JS

interface Feature { name: string; agg: string; column?: string; windowMs?: number }
interface View { name: string; entity: string[]; timestamp: string; ttlMs?: number; features: Feature[] }

/**
 * SPEC 7, materialization: for every entity seen in the source before `end`, one row with
 * feature_timestamp = end, each feature over [end - window, end) (no window: all before end);
 * count/count_distinct over no rows 0, others null; last/first = value of the newest/oldest row by
 * timestamp (ties: the later row of the source is the newer, as documented).
 */
function expectedMaterialization(events: readonly Row[], view: View, end: Date): Row[] {
  const groups = new Map<string, { entity: Row; rows: { row: Row; index: number }[] }>()
  events.forEach((row, index) => {
    const ts = row[view.timestamp] as Date | null
    if (ts === null || ts.getTime() >= end.getTime()) return
    if (view.entity.some((e) => row[e] === null)) return
    const key = JSON.stringify(view.entity.map((e) => row[e]))
    let g = groups.get(key)
    if (!g) groups.set(key, (g = { entity: Object.fromEntries(view.entity.map((e) => [e, row[e]!])), rows: [] }))
    g.rows.push({ row, index })
  })
  const out: Row[] = []
  for (const g of groups.values()) {
    const r: Row = { ...g.entity, feature_timestamp: end }
    for (const f of view.features) {
      const inWindow = g.rows.filter(({ row }) => f.windowMs === undefined || (row[view.timestamp] as Date).getTime() >= end.getTime() - f.windowMs)
      const values = f.column === undefined ? [] : inWindow.map(({ row }) => row[f.column!]!).filter((v) => v !== null && v !== undefined)
      const nums = values as number[]
      const byTime = [...inWindow].sort((a, b) => (a.row[view.timestamp] as Date).getTime() - (b.row[view.timestamp] as Date).getTime() || a.index - b.index)
      switch (f.agg) {
        case 'count': r[f.name] = f.column === undefined ? inWindow.length : values.length; break
        case 'count_distinct': r[f.name] = new Set(values.map((v) => String(v))).size; break
        case 'sum': r[f.name] = nums.length === 0 ? null : nums.reduce((s, v) => s + v, 0); break
        case 'avg': r[f.name] = nums.length === 0 ? null : nums.reduce((s, v) => s + v, 0) / nums.length; break
        case 'min': r[f.name] = nums.length === 0 ? null : values.reduce((m, v) => (v < m ? v : m)); break
        case 'max': r[f.name] = nums.length === 0 ? null : values.reduce((m, v) => (v > m ? v : m)); break
        case 'stddev': {
          if (nums.length < 2) { r[f.name] = null; break }
          const mean = nums.reduce((s, v) => s + v, 0) / nums.length
          r[f.name] = Math.sqrt(nums.reduce((s, v) => s + (v - mean) ** 2, 0) / (nums.length - 1))
          break
        }
        case 'last': r[f.name] = byTime.length === 0 ? null : byTime.at(-1)!.row[f.column!] ?? null; break
        case 'first': r[f.name] = byTime.length === 0 ? null : byTime[0]!.row[f.column!] ?? null; break
      }
    }
    out.push(r)
  }
  return out
}

const entityOrder = (entity: readonly string[]) => (a: Row, b: Row): number => {
  for (const e of entity) {
    const x = String(a[e]), y = String(b[e])
    if (x !== y) return x < y ? -1 : 1
  }
  return 0
}

/**
 * SPEC 7, training set: per label row (entity, t), each feature takes the value of the newest
 * materialized row with feature_timestamp <= t; null if none or if that feature_timestamp is before
 * t - ttl (exactly ttl old is used). Rows kept in order, never dropped or duplicated.
 */
function expectedTrainingSet(labels: readonly Row[], timestamp: string, joins: { view: View; offline: readonly Row[]; features: string[] }[]): Row[] {
  return labels.map((label) => {
    const out: Row = { ...label }
    const t = label[timestamp] as Date | null
    for (const { view, offline, features } of joins) {
      let best: Row | undefined
      if (t !== null && view.entity.every((e) => label[e] !== null)) {
        for (const row of offline) {
          if (!view.entity.every((e) => row[e] === label[e])) continue
          const ft = (row.feature_timestamp as Date).getTime()
          if (ft > t.getTime()) continue
          if (!best || ft > (best.feature_timestamp as Date).getTime()) best = row
        }
      }
      const fresh = best !== undefined && (view.ttlMs === undefined || (best.feature_timestamp as Date).getTime() >= t!.getTime() - view.ttlMs)
      for (const f of features) out[`${view.name}__${f}`] = fresh ? best![f]! : null
    }
    return out
  })
}

/** MurmurHash3's fmix32 of (i + seed * 0x9E3779B9) mod 2^32, over 2^32, below the share: held out (docs/data.md). */
function heldOut(i: number, seed: number, share: number): boolean {
  let h = (i + Math.imul(seed, 0x9e3779b9)) >>> 0
  h = (h ^ (h >>> 16)) >>> 0
  h = Math.imul(h, 0x85ebca6b) >>> 0
  h = (h ^ (h >>> 13)) >>> 0
  h = Math.imul(h, 0xc2b2ae35) >>> 0
  h = (h ^ (h >>> 16)) >>> 0
  return h / 4294967296 < share
}

// ---------------------------------------------------------------- fixtures

const ACTIVITY_YAML = {
  feature_view: 'activity',
  entity: ['user_id'],
  source: 'events',
  timestamp: 'ts',
  ttl: '2d',
  online: true,
  features: {
    spend_1d: { agg: 'sum', column: 'amount', window: '1d' },
    events_1d: { agg: 'count', window: '1d' },
    events_all: { agg: 'count' },
    amounts_1d: { agg: 'count', column: 'amount', window: '1d' },
    avg_2d: { agg: 'avg', column: 'amount', window: '2d' },
    min_1d: { agg: 'min', column: 'amount', window: '1d' },
    max_1d: { agg: 'max', column: 'amount', window: '1d' },
    std_2d: { agg: 'stddev', column: 'amount', window: '2d' },
    countries_2d: { agg: 'count_distinct', column: 'country', window: '2d' },
    last_country: { agg: 'last', column: 'country' },
    first_country: { agg: 'first', column: 'country' },
    last_country_1d: { agg: 'last', column: 'country', window: '1d' },
    qty_1d: { agg: 'sum', column: 'qty', window: '1d' },
    max_qty: { agg: 'max', column: 'qty' },
  },
}

function viewOf(yaml: typeof ACTIVITY_YAML | Record<string, unknown>): View {
  const y = yaml as { feature_view: string; entity: string[]; timestamp: string; ttl?: string; features: Record<string, { agg: string; column?: string; window?: string }> }
  const ms = (s: string | undefined) => (s === undefined ? undefined : Number(s.slice(0, -1)) * (s.endsWith('d') ? DAY : s.endsWith('h') ? 3_600_000 : 60_000))
  return {
    name: y.feature_view,
    entity: y.entity,
    timestamp: y.timestamp,
    ...(y.ttl !== undefined ? { ttlMs: ms(y.ttl)! } : {}),
    features: Object.entries(y.features).map(([name, f]) => ({ name, agg: f.agg, ...(f.column ? { column: f.column } : {}), ...(f.window ? { windowMs: ms(f.window)! } : {}) })),
  }
}

const GEO_YAML = {
  feature_view: 'geo',
  entity: ['country'],
  source: 'events',
  timestamp: 'ts',
  features: { events_1d: { agg: 'count', window: '1d' }, spend: { agg: 'sum', column: 'amount' } },
}

const EVENT_TYPES = { user_id: 'VARCHAR', ts: 'TIMESTAMPTZ', amount: 'DOUBLE', country: 'VARCHAR', qty: 'BIGINT' }

const ev = (user_id: string | null, ts: string | null, amount: number | null, country: string | null, qty: number | null): Row => ({ user_id, ts: ts === null ? null : D(ts), amount, country, qty })

/** Events around the midnights of Jan 2-4 2026, in no particular order. */
const EVENTS: Row[] = [
  ev('u1', '2026-01-01T10:00:00Z', 5, 'DE', 1),
  ev('u1', '2026-01-02T00:00:00Z', 7, 'FR', 2), // exactly at midnight: inside [Jan 2, Jan 3), outside [Jan 1, Jan 2)
  ev('u1', '2026-01-02T23:59:59.999Z', 1.5, 'DE', null),
  ev('u1', '2026-01-03T00:00:00Z', 100, 'IT', 3), // exactly at the end Jan 3: not before it
  ev('u2', '2026-01-01T23:00:00Z', null, null, 4), // null values: count counts the row, count(amount) does not
  ev('u2', '2026-01-02T12:00:00Z', 3, 'ES', 5),
  ev('u2', '2026-01-02T12:00:00Z', 4, 'PT', 6), // same timestamp: the later row is the newer (last = PT)
  ev('u3', '2025-12-20T00:00:00Z', 9, 'DE', 7), // old: only the windowless features see it
  ev(null, '2026-01-02T01:00:00Z', 50, 'DE', 1), // no entity: ignored
  ev('u4', null, 60, 'FR', 1), // no timestamp: ignored
  ev('u1', '2026-01-01T00:00:00Z', 2, 'US', 8),
  ev('u5', '2026-01-03T08:00:00Z', 10, 'DE', 9),
]

const E1 = D('2026-01-02T00:00:00Z')
const E2 = D('2026-01-03T00:00:00Z')
const E3 = D('2026-01-04T00:00:00Z')

interface Setup { db: Db; dir: string; datasets: Datasets; now: { at: Date } }

async function setup(t: test.TestContext): Promise<Setup> {
  const log = testLogger()
  const db = createDb(await createTestDatabase(t), { log })
  t.after(() => db.close())
  await migrate(db, log)
  const dir = mkdtempSync(join(tmpdir(), 'cairn-features-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const datasets = createDatasets({ db, dir, producer: { kind: 'actor', actor: 'test' }, duckdb: { threads: 1 } })
  return { db, dir, datasets, now: { at: new Date() } }
}

async function defineViews(db: Db, ...yamls: Record<string, unknown>[]): Promise<void> {
  await db.tx((q) => saveFeatureViews(q, yamls.map((y) => {
    const v = normalizeFeatureView(y)
    return { name: v.name, file: `features/${v.name}.yaml`, hash: v.hash, definitionJson: v.definitionJson, source: JSON.stringify(y), description: null, owner: null, tags: [] }
  })))
}

function storeOf(s: Setup) {
  return createFeatureStore({ db: s.db, datasets: s.datasets, producer: { kind: 'actor', actor: 'test' }, duckdb: { threads: 1 }, now: () => s.now.at })
}

async function offlineRows(s: Setup, view: string, end: Date, entity: string[]): Promise<Row[]> {
  const m = (await listMaterializations(s.db, view)).filter((r) => r.intervalEnd.getTime() === end.getTime())
  assert.equal(m.length, 1, `one materialization of ${view} at ${end.toISOString()}`)
  return (await readParquet([join(s.dir, m[0]!.location, 'part-0.parquet')])).sort(entityOrder(entity))
}

// ---------------------------------------------------------------- tests

test('materialize: every aggregation, empty windows, half-open windows at midnight, ties, nulls; late data; idempotent', async (t) => {
  const s = await setup(t)
  await publishRows(s.datasets, 'events', EVENT_TYPES, EVENTS)
  await defineViews(s.db, ACTIVITY_YAML)
  const store = storeOf(s)
  const view = viewOf(ACTIVITY_YAML)

  for (const end of [E1, E2, E3, D('2026-01-10T00:00:00Z')]) {
    const result = await store.materialize({ view: 'activity', intervalStart: new Date(end.getTime() - DAY), intervalEnd: end })
    const expected = expectedMaterialization(EVENTS, view, end).sort(entityOrder(view.entity))
    assert.equal(result.rowsOffline, expected.length)
    assert.equal(result.definitionVersion, 1)
    assert.deepEqual(result.source, { dataset: 'events', version: 1 })
    assertTable(await offlineRows(s, 'activity', end, view.entity), expected, `activity as of ${end.toISOString()}`)
  }
  // Spot checks of the rules the expected table encodes (so a wrong reading of the SPEC in both shows up).
  const atE2 = await offlineRows(s, 'activity', E2, view.entity)
  const u1 = atE2.find((r) => r.user_id === 'u1')!
  assert.equal(u1.events_1d, 2, 'the midnight event at Jan 2 is in [Jan 2, Jan 3); the one at Jan 3 is not before the end')
  assert.equal(u1.spend_1d, 8.5)
  const u2 = atE2.find((r) => r.user_id === 'u2')!
  assert.equal(u2.last_country, 'PT', 'a timestamp tie goes to the later row of the source')
  assert.equal(u2.first_country, null, 'first = the oldest row\'s value, even when null')
  const u3 = atE2.find((r) => r.user_id === 'u3')!
  assert.deepEqual([u3.events_1d, u3.countries_2d, u3.spend_1d, u3.min_1d, u3.events_all, u3.last_country], [0, 0, null, null, 1, 'DE'], 'empty windows: counts 0, the rest null; no window sees all history')
  assert.equal(atE2.some((r) => r.user_id === 'u5'), false, 'an entity seen only after the end has no row')
  assert.equal(atE2.some((r) => r.user_id === null || r.user_id === 'u4'), false, 'rows without entity or timestamp belong to no entity')

  // Re-materializing the same interval gives identical rows, one materialization, the old folder gone.
  const before = (await listMaterializations(s.db, 'activity')).find((m) => m.intervalEnd.getTime() === E2.getTime())!
  await store.materialize({ view: 'activity', intervalStart: E1, intervalEnd: E2 })
  const after = await listMaterializations(s.db, 'activity')
  assert.equal(after.length, 4)
  assert.equal(existsSync(join(s.dir, before.location)), false, 'the replaced rows are removed')
  assertTable(await offlineRows(s, 'activity', E2, view.entity), atE2, 're-materialized Jan 3')

  // Late data: a new source version with an event back on Jan 2; the interval re-materialized takes it.
  const late = [...EVENTS, ev('u3', '2026-01-02T06:00:00Z', 11, 'NL', 10)]
  await publishRows(s.datasets, 'events', EVENT_TYPES, late)
  const again = await store.materialize({ view: 'activity', intervalStart: E1, intervalEnd: E2 })
  assert.deepEqual(again.source, { dataset: 'events', version: 2 })
  assertTable(await offlineRows(s, 'activity', E2, view.entity), expectedMaterialization(late, view, E2).sort(entityOrder(view.entity)), 'Jan 3 with late data')
  assert.equal((await listMaterializations(s.db, 'activity')).find((m) => m.intervalEnd.getTime() === E2.getTime())!.sourceVersion, 2, 'lineage: the source version used')
})

test('online store: newest interval wins whatever the order, idempotent, ttl on read (exactly ttl old kept), unknown entities', async (t) => {
  const s = await setup(t)
  await publishRows(s.datasets, 'events', EVENT_TYPES, EVENTS)
  await defineViews(s.db, ACTIVITY_YAML)
  const store = storeOf(s)
  const view = viewOf(ACTIVITY_YAML)

  const r3 = await store.materialize({ view: 'activity', intervalStart: E2, intervalEnd: E3 })
  assert.equal(r3.rowsOnline, r3.rowsOffline)
  const r1 = await store.materialize({ view: 'activity', intervalStart: new Date(E1.getTime() - DAY), intervalEnd: E1 })
  assert.equal(r1.rowsOnline, 0, 'an older interval materialized later overwrites nothing')
  const again = await store.materialize({ view: 'activity', intervalStart: E2, intervalEnd: E3 })
  assert.equal(again.rowsOnline, r3.rowsOnline, 'the same interval again rewrites the same rows')
  assert.equal(await countOnlineRows(s.db, 'activity'), 4)

  const expected = expectedMaterialization(EVENTS, view, E3)
  s.now.at = new Date(E3.getTime() + 2 * DAY) // exactly ttl old: still returned
  const read = await store.online.read('activity', [{ user_id: 'u1' }, { user_id: 'nobody' }, { user_id: 'u5' }])
  assert.ok(read.ok)
  const u1 = read.values[0]!
  assert.equal(u1.found, true)
  assert.equal(u1.feature_timestamp, E3.toISOString())
  for (const f of view.features) assert.ok(sameCell(u1.features[f.name] as Cell, expected.find((r) => r.user_id === 'u1')![f.name]), `online ${f.name}`)
  assert.deepEqual(read.values[1], { entity: { user_id: 'nobody' }, features: Object.fromEntries(view.features.map((f) => [f.name, null])), feature_timestamp: null, found: false, expired: false })
  assert.equal(read.values[2]!.features.events_1d, 1)

  s.now.at = new Date(E3.getTime() + 2 * DAY + 1) // 1 ms older than ttl: values null
  const stale = await store.online.read('activity', [{ user_id: 'u1' }])
  assert.ok(stale.ok)
  assert.equal(stale.values[0]!.expired, true)
  assert.ok(Object.values(stale.values[0]!.features).every((v) => v === null))

  const unknown = await store.online.read('nope', [{ user_id: 'u1' }])
  assert.equal(unknown.ok, false)
  const wrongKey = await store.online.read('activity', [{ user: 'u1' }])
  assert.ok(!wrongKey.ok && wrongKey.reason === 'bad_entity')
})

test('the online param overrides the view\'s online setting, both ways (SPEC 4: default the view\'s own)', async (t) => {
  const s = await setup(t)
  await publishRows(s.datasets, 'events', EVENT_TYPES, EVENTS)
  await defineViews(s.db, ACTIVITY_YAML, GEO_YAML)
  const store = storeOf(s)
  // activity says online: true; asked for offline only, it writes no online row.
  const offlineOnly = await store.materialize({ view: 'activity', intervalStart: E1, intervalEnd: E2, online: false })
  assert.equal(offlineOnly.rowsOnline, null)
  assert.ok(offlineOnly.rowsOffline > 0)
  assert.equal(await countOnlineRows(s.db, 'activity'), 0)
  // geo says nothing (offline only by default); asked for online, it writes its rows.
  const byDefault = await store.materialize({ view: 'geo', intervalStart: E1, intervalEnd: E2 })
  assert.equal(byDefault.rowsOnline, null)
  assert.equal(await countOnlineRows(s.db, 'geo'), 0)
  const online = await store.materialize({ view: 'geo', intervalStart: E1, intervalEnd: E2, online: true })
  assert.equal(online.rowsOnline, online.rowsOffline)
  assert.equal(await countOnlineRows(s.db, 'geo'), online.rowsOffline)
})

test('online keys match the entity column type: integers and timestamps given as strings', async (t) => {
  const s = await setup(t)
  await publishRows(s.datasets, 'clicks', { account: 'BIGINT', day: 'TIMESTAMPTZ', ts: 'TIMESTAMPTZ' }, [
    { account: 42, day: D('2026-01-01T00:00:00Z'), ts: D('2026-01-01T05:00:00Z') },
    { account: 42, day: D('2026-01-01T00:00:00Z'), ts: D('2026-01-01T06:00:00Z') },
  ])
  await defineViews(s.db, { feature_view: 'clicks_view', entity: ['account', 'day'], source: 'clicks', timestamp: 'ts', online: true, features: { n: { agg: 'count' } } })
  const store = storeOf(s)
  await store.materialize({ view: 'clicks_view', intervalStart: E1, intervalEnd: E1 })
  for (const asked of [{ account: '42', day: '2026-01-01T00:00:00Z' }, { account: 42, day: '2026-01-01T00:00:00.000Z' }, { account: '42', day: '2026-01-01 00:00:00' }]) {
    const read = await store.online.read('clicks_view', [asked])
    assert.ok(read.ok)
    assert.deepEqual(read.values[0]!.entity, { account: 42, day: '2026-01-01T00:00:00.000Z' }, JSON.stringify(asked))
    assert.equal(read.values[0]!.features.n, 2, JSON.stringify(asked))
  }
})

test('training set: point in time per label, ttl, unknown/null entities, duplicate and unordered labels, several views, holdout', async (t) => {
  const s = await setup(t)
  await publishRows(s.datasets, 'events', EVENT_TYPES, EVENTS)
  await defineViews(s.db, ACTIVITY_YAML, GEO_YAML)
  const store = storeOf(s)
  const activity = viewOf(ACTIVITY_YAML)
  const geo = viewOf(GEO_YAML)
  const ends = [E1, E2, E3]
  for (const end of ends) {
    await store.materialize({ view: 'activity', intervalStart: new Date(end.getTime() - DAY), intervalEnd: end })
    await store.materialize({ view: 'geo', intervalStart: new Date(end.getTime() - DAY), intervalEnd: end })
  }
  const offline = (v: View) => ends.flatMap((end) => expectedMaterialization(EVENTS, v, end))

  const lab = (user_id: string | null, country: string | null, ts: string | null, churned: boolean): Row => ({ user_id, country, label_ts: ts === null ? null : D(ts), churned })
  const LABELS: Row[] = [
    lab('u1', 'DE', '2026-01-03T00:00:00Z', true), // exactly at a feature timestamp: that row is used
    lab('u1', 'DE', '2026-01-02T23:59:59.999Z', false), // just before: the previous one
    lab('u2', 'ES', '2026-01-01T12:00:00Z', false), // before any materialization: null
    lab('u1', 'FR', '2026-01-06T00:00:00Z', true), // exactly ttl (2d) after Jan 4: still used
    lab('u1', 'FR', '2026-01-06T00:00:00.001Z', true), // 1 ms older than ttl: null (geo has no ttl: kept)
    lab('ghost', 'XX', '2026-01-03T12:00:00Z', false), // unknown entity in both views
    lab(null, 'DE', '2026-01-03T12:00:00Z', false), // null entity
    lab('u2', 'PT', null, true), // null timestamp
    lab('u1', 'DE', '2026-01-03T00:00:00Z', true), // a duplicate of the first row
    lab('u3', 'DE', '2026-01-05T00:00:00Z', false),
    lab('u2', 'ES', '2026-01-03T06:00:00Z', true),
  ]
  const LABEL_TYPES = { user_id: 'VARCHAR', country: 'VARCHAR', label_ts: 'TIMESTAMPTZ', churned: 'BOOLEAN' }
  await publishRows(s.datasets, 'labels', LABEL_TYPES, LABELS)

  const features = ['activity.spend_1d', 'activity.last_country', 'activity.events_all', 'geo']
  const result = await store.trainingSet({ labels: 'labels', timestamp: 'label_ts', label: 'churned', features, dataset: 'train' })
  const expected = expectedTrainingSet(LABELS, 'label_ts', [
    { view: activity, offline: offline(activity), features: ['spend_1d', 'last_country', 'events_all'] },
    { view: geo, offline: offline(geo), features: ['events_1d', 'spend'] },
  ])
  assertTable(await readParquet(result.published.version.files), expected, 'training set')
  assert.equal(result.published.version.rows, LABELS.length)
  assert.deepEqual(result.inputs, [{ dataset: 'labels', version: 1 }, { feature_view: 'activity', definition_version: 1 }, { feature_view: 'geo', definition_version: 1 }])
  // Spot checks of the SPEC rules in the expected table.
  const got = await readParquet(result.published.version.files)
  assert.equal(got[3]!.activity__events_all, 5, 'exactly ttl old is used')
  assert.equal(got[4]!.activity__events_all, null, 'older than ttl is null')
  assert.equal(got[4]!.geo__spend, 7, 'a view without ttl keeps old values (FR as of Jan 4)')

  // Holdout: the same rows split by position and seed only; both datasets in one publish.
  const split = await store.trainingSet({ labels: 'labels', timestamp: 'label_ts', label: 'churned', features, dataset: 'train', split: { holdout: 0.3, seed: 7 } })
  const held = expected.filter((_, i) => heldOut(i, 7, 0.3))
  const kept = expected.filter((_, i) => !heldOut(i, 7, 0.3))
  assert.ok(held.length > 0 && kept.length > 0, 'the seed splits this small set both ways')
  assertTable(await readParquet(split.published.version.files), kept, 'training part')
  assertTable(await readParquet(split.holdout!.version.files), held, 'holdout part')
  assert.equal(split.holdout!.version.dataset, 'train_holdout')
  assert.equal(split.published.version.createdAt.getTime(), split.holdout!.version.createdAt.getTime(), 'published in one transaction')

  // A labels window [start, end): the rows of the labels in it, in their order, the bounds exact
  // (start included, end left out), a null timestamp in none; with a split, held out by position among them.
  const window = { start: D('2026-01-03T00:00:00Z'), end: D('2026-01-05T00:00:00Z') }
  const inWindow = (r: Row): boolean => r.label_ts !== null && (r.label_ts as Date) >= window.start && (r.label_ts as Date) < window.end
  const windowed = await store.trainingSet({ labels: 'labels', timestamp: 'label_ts', label: 'churned', features, dataset: 'recent', split: { holdout: 0.3, seed: 7 }, labelsWindow: window })
  const expectedWindow = expected.filter((_, i) => inWindow(LABELS[i]!))
  assert.equal(expectedWindow.length, 5, 'u1 at 01-03 twice, ghost, null entity, u2 at 01-03 06:00 (not 01-02 23:59, not 01-05)')
  assertTable(await readParquet(windowed.published.version.files), expectedWindow.filter((_, i) => !heldOut(i, 7, 0.3)), 'windowed training part')
  assertTable(await readParquet(windowed.holdout!.version.files), expectedWindow.filter((_, i) => heldOut(i, 7, 0.3)), 'windowed holdout')

  // A larger set: the split's share is about right and a different seed gives a different split.
  const many = Array.from({ length: 2000 }, (_, i) => lab(`u${i % 7}`, 'DE', '2026-01-03T00:00:00Z', i % 2 === 0))
  await publishRows(s.datasets, 'labels', LABEL_TYPES, many)
  const big = await store.trainingSet({ labels: 'labels', timestamp: 'label_ts', label: 'churned', features: ['activity.events_all'], dataset: 'big', split: { holdout: 0.2, seed: -3 } })
  const expectHeld = many.filter((_, i) => heldOut(i, -3, 0.2)).length
  assert.equal(big.holdout!.version.rows, expectHeld)
  assert.ok(Math.abs(expectHeld / 2000 - 0.2) < 0.04, `share ${expectHeld / 2000}`)
})

test('training set: unknown views and features, missing label columns fail with a clear message; label entity types are cast', async (t) => {
  const s = await setup(t)
  await publishRows(s.datasets, 'events', { account: 'BIGINT', ts: 'TIMESTAMPTZ', amount: 'DOUBLE' }, [
    { account: 1, ts: D('2026-01-01T01:00:00Z'), amount: 2 },
    { account: 2, ts: D('2026-01-01T02:00:00Z'), amount: 3 },
  ])
  await defineViews(s.db, { feature_view: 'acct', entity: 'account', source: 'events', timestamp: 'ts', features: { spend: { agg: 'sum', column: 'amount' } } })
  const store = storeOf(s)
  await store.materialize({ view: 'acct', intervalStart: E1, intervalEnd: E1 })
  // Labels carry the account as text: "1" matches the integer 1, "x" matches nothing.
  await publishRows(s.datasets, 'labels', { account: 'VARCHAR', at: 'TIMESTAMPTZ', y: 'BIGINT' }, [
    { account: '2', at: E2, y: 1 }, { account: 'x', at: E2, y: 0 }, { account: '1', at: E2, y: 1 },
  ])
  const r = await store.trainingSet({ labels: 'labels', timestamp: 'at', label: 'y', features: ['acct'], dataset: 'ts' })
  assert.deepEqual((await readParquet(r.published.version.files)).map((row) => row.acct__spend), [3, null, 2])
  await assert.rejects(store.trainingSet({ labels: 'labels', timestamp: 'at', label: 'y', features: ['nope.x'], dataset: 'ts' }), /feature view nope/)
  await assert.rejects(store.trainingSet({ labels: 'labels', timestamp: 'at', label: 'y', features: ['acct.nope'], dataset: 'ts' }), /has no feature nope/)
  await assert.rejects(store.trainingSet({ labels: 'labels', timestamp: 'when', label: 'y', features: ['acct'], dataset: 'ts' }), /no timestamp column when/)
  await assert.rejects(store.materialize({ view: 'nope', intervalStart: E1, intervalEnd: E1 }), /not defined/)
  // A split writes <dataset>_holdout, which must be a dataset name too (at most 64 characters): refused before any work.
  const long = `t${'x'.repeat(56)}`
  await assert.rejects(store.trainingSet({ labels: 'labels', timestamp: 'at', label: 'y', features: ['acct'], dataset: long, split: { holdout: 0.5 } }),
    (error: Error) => error instanceof FeatureRequestError && /holdout dataset \w+_holdout, which is not a dataset name/.test(error.message))
  assert.equal(await s.datasets.get(long), undefined)
  // labels may name a version: name@N.
  const pinned = await store.trainingSet({ labels: 'labels@1', timestamp: 'at', label: 'y', features: ['acct'], dataset: 'ts' })
  assert.deepEqual(pinned.inputs[0], { dataset: 'labels', version: 1 })
})

test('versions of several files: ties go to the later file, labels keep file then row order', async (t) => {
  const s = await setup(t)
  const write = async (name: string, parts: string[]) => {
    const staged = await s.datasets.stage(name)
    const duck = await openDuckDb({ threads: 1 })
    for (const [i, sql] of parts.entries()) await duck.run(`COPY (${sql}) TO ${sqlString(join(staged.dir, `part-${i}.parquet`))} (FORMAT parquet)`)
    duck.close()
    await s.datasets.publish([{ staged, producedKind: 'import' }])
  }
  // Column order differs between the files: they are read by name.
  await write('events', [
    `SELECT 'u1' AS user_id, TIMESTAMPTZ '2026-01-01 10:00:00+00' AS ts, 'DE' AS country UNION ALL SELECT 'u1', TIMESTAMPTZ '2026-01-01 12:00:00+00', 'FR'`,
    `SELECT 'IT' AS country, 'u1' AS user_id, TIMESTAMPTZ '2026-01-01 12:00:00+00' AS ts UNION ALL SELECT 'ES', 'u1', TIMESTAMPTZ '2026-01-01 10:00:00+00'`,
  ])
  await defineViews(s.db, { feature_view: 'multi', entity: 'user_id', source: 'events', timestamp: 'ts', features: { last_c: { agg: 'last', column: 'country' }, first_c: { agg: 'first', column: 'country' } } })
  const store = storeOf(s)
  await store.materialize({ view: 'multi', intervalStart: E1, intervalEnd: E1 })
  const [row] = await offlineRows(s, 'multi', E1, ['user_id'])
  assert.deepEqual([row!.last_c, row!.first_c], ['IT', 'DE'], 'newest: the 12:00 row of the later file; oldest: the 10:00 row of the earlier file')
  await write('labels', [
    `SELECT * FROM (VALUES ('u1', TIMESTAMPTZ '2026-01-02 00:00:00+00', 1), ('u1', TIMESTAMPTZ '2026-01-01 00:00:00+00', 2)) t(user_id, "at", y)`,
    `SELECT * FROM (VALUES (3, 'u1', TIMESTAMPTZ '2026-01-03 00:00:00+00'), (4, 'x', TIMESTAMPTZ '2026-01-02 00:00:00+00')) t(y, user_id, "at")`,
  ])
  const r = await store.trainingSet({ labels: 'labels', timestamp: 'at', label: 'y', features: ['multi.last_c'], dataset: 'out' })
  assert.deepEqual((await readParquet(r.published.version.files)).map((x) => [x.y, x.multi__last_c]), [[1, 'IT'], [2, null], [3, 'IT'], [4, null]])
})

test('concurrent materializations of one view (the same interval twice among them): one row set per interval, newest online', async (t) => {
  const s = await setup(t)
  const many = Array.from({ length: 3000 }, (_, i) => ev(`u${i % 1500}`, new Date(Date.parse('2026-01-01T00:00:00Z') + i * 60_000).toISOString(), i, 'DE', i))
  await publishRows(s.datasets, 'events', EVENT_TYPES, many)
  await defineViews(s.db, ACTIVITY_YAML)
  const store = storeOf(s)
  const ends = [E3, E2, E1, E2, E3]
  await Promise.all(ends.map((end) => store.materialize({ view: 'activity', intervalStart: new Date(end.getTime() - DAY), intervalEnd: end })))
  assert.deepEqual((await listMaterializations(s.db, 'activity')).map((m) => m.intervalEnd.toISOString()), [E1, E2, E3].map((d) => d.toISOString()))
  const view = viewOf(ACTIVITY_YAML)
  for (const end of [E1, E2, E3]) assertTable(await offlineRows(s, 'activity', end, view.entity), expectedMaterialization(many, view, end).sort(entityOrder(view.entity)), end.toISOString())
  const online = await s.db.query<{ n: number; ts: Date }>(`SELECT count(*)::int AS n, min(feature_timestamp) AS ts FROM cairn.feature_online WHERE view = 'activity'`)
  assert.deepEqual([online.rows[0]!.n, online.rows[0]!.ts.toISOString()], [1500, E3.toISOString()])
})

test('an attempt that no longer holds its claim records nothing: no interval, no online row, no folder left', async (t) => {
  const s = await setup(t)
  await publishRows(s.datasets, 'events', EVENT_TYPES, EVENTS)
  await defineViews(s.db, ACTIVITY_YAML)
  const lost = createFeatureStore({ db: s.db, datasets: s.datasets, producer: { kind: 'attempt', runId: 'r1', taskId: 't1', attempt: 1, claimId: '00000000-0000-0000-0000-000000000000' }, duckdb: { threads: 1 } })
  await assert.rejects(lost.materialize({ view: 'activity', intervalStart: E1, intervalEnd: E2 }), /no longer holds/)
  assert.deepEqual(await listMaterializations(s.db, 'activity'), [])
  assert.equal(await countOnlineRows(s.db, 'activity'), 0)
  const { readdirSync } = await import('node:fs')
  const folder = join(s.dir, '_features', 'activity', 'd1')
  assert.deepEqual(existsSync(folder) ? readdirSync(folder).flatMap((end) => readdirSync(join(folder, end))) : [], [], 'the computed rows were removed')

  // A cancelled or timed-out task: its signal stops the query, nothing is recorded or published.
  const store = storeOf(s)
  await assert.rejects(store.materialize({ view: 'activity', intervalStart: E1, intervalEnd: E2, signal: AbortSignal.abort() }))
  const controller = new AbortController()
  const running = store.materialize({ view: 'activity', intervalStart: E1, intervalEnd: E2, signal: controller.signal })
  controller.abort()
  await assert.rejects(running)
  assert.deepEqual(await listMaterializations(s.db, 'activity'), [])
  await assert.rejects(store.trainingSet({ labels: 'events', timestamp: 'ts', label: 'amount', features: ['activity'], dataset: 'cancelled', signal: AbortSignal.abort() }))
  assert.equal(await s.datasets.get('cancelled'), undefined)
})

test('a changed definition gets the next definition version; the old version and its history are kept', async (t) => {
  const s = await setup(t)
  await publishRows(s.datasets, 'events', EVENT_TYPES, EVENTS)
  await defineViews(s.db, GEO_YAML)
  const store = storeOf(s)
  await store.materialize({ view: 'geo', intervalStart: E1, intervalEnd: E2 })
  await defineViews(s.db, GEO_YAML) // the same definition: no new version
  assert.deepEqual((await listFeatureViewDefinitions(s.db, 'geo')).map((d) => d.version), [1])
  const changed = { ...GEO_YAML, features: { ...GEO_YAML.features, spend_1d: { agg: 'sum', column: 'amount', window: '1d' } } }
  await defineViews(s.db, changed)
  assert.deepEqual((await listFeatureViewDefinitions(s.db, 'geo')).map((d) => d.version), [2, 1])
  const r = await store.materialize({ view: 'geo', intervalStart: E1, intervalEnd: E2 })
  assert.equal(r.definitionVersion, 2)
  const all = await listMaterializations(s.db, 'geo')
  assert.deepEqual(all.map((m) => [m.definitionVersion, m.intervalEnd.toISOString()]), [[1, E2.toISOString()], [2, E2.toISOString()]])
  const v2 = await readParquet([join(s.dir, all[1]!.location, 'part-0.parquet')], 'country')
  assertTable(v2, expectedMaterialization(EVENTS, viewOf(changed), E2).sort(entityOrder(['country'])), 'geo v2')
  assert.ok(existsSync(join(s.dir, all[0]!.location)), 'the old definition\'s rows are kept')
})
