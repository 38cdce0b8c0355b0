/**
 * Serving figures on real Postgres: two server processes' figures (two recorders with their own
 * server ids) add up in readServingWindow, the window takes only its buckets, p99 comes back within
 * 5 %, and a stage or share change of a model version is announced on `cairn_models` at commit.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { createDb } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { createServingStats, readServingWindow } from '../../engine/serve/serving-stats.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'

test('serving figures of several servers add up over a window', async (t) => {
  const log = testLogger()
  const db = createDb(await createTestDatabase(t), { log })
  t.after(() => db.close())
  await migrate(db, log)
  let clock = Date.parse('2026-03-01T10:00:00.000Z')
  const now = () => clock
  const a = createServingStats({ db, serverId: 'a', now })
  const b = createServingStats({ db, serverId: 'b', now })
  // Second 0: a serves 100 answers of v2 at 1..100 ms, 3 of them errors; b serves 100 more, 2 errors.
  for (let i = 1; i <= 100; i++) a.record('churn', 2, i, i <= 3)
  clock += 400
  for (let i = 1; i <= 100; i++) b.record('churn', 2, i, i <= 2)
  b.record('churn', 1, 5, false)
  await Promise.all([a.flush(), b.flush()])
  // Second 5: 10 more answers on a, flushed in two parts.
  clock = Date.parse('2026-03-01T10:00:05.300Z')
  for (let i = 0; i < 5; i++) a.record('churn', 2, 1000, true)
  await a.flush()
  for (let i = 0; i < 5; i++) a.record('churn', 2, 1000, true)
  await a.stop()
  await b.stop()

  const start = new Date('2026-03-01T10:00:00.000Z')
  const first = await readServingWindow(db, 'churn', 2, start, new Date('2026-03-01T10:00:01.000Z'))
  assert.deepEqual([first.requests, first.errors, first.errorRate], [200, 5, 0.025])
  assert.ok(Math.abs(first.p99Ms! - 99) / 99 < 0.05, `p99 ${first.p99Ms}`)
  const all = await readServingWindow(db, 'churn', 2, start)
  assert.deepEqual([all.requests, all.errors], [210, 15])
  assert.ok(Math.abs(all.p99Ms! - 1000) / 1000 < 0.05, `p99 ${all.p99Ms}`)
  // A window starting inside a bucket takes that bucket (buckets overlapping the window count).
  const late = await readServingWindow(db, 'churn', 2, new Date('2026-03-01T10:00:05.900Z'))
  assert.deepEqual([late.requests, late.errors, late.errorRate], [10, 10, 1])
  const after = await readServingWindow(db, 'churn', 2, new Date('2026-03-01T10:00:06.000Z'))
  assert.deepEqual(after, { requests: 0, errors: 0, errorRate: 0, p99Ms: null })
  const v1 = await readServingWindow(db, 'churn', 1, start)
  assert.equal(v1.requests, 1)
})

test('stage and traffic share changes are announced on cairn_models when they commit', async (t) => {
  const log = testLogger()
  const db = createDb(await createTestDatabase(t), { log })
  t.after(() => db.close())
  await migrate(db, log)
  const heard: string[] = []
  const stop = await db.listen('cairn_models', (payload) => heard.push(payload))
  t.after(stop)
  await db.query(`INSERT INTO cairn.model (name) VALUES ('churn')`)
  const sha = 'a'.repeat(64)
  await db.query(`INSERT INTO cairn.model_version (model, version, artifact, sha256) VALUES ('churn', 1, 'x', $1)`, [sha])
  await waitFor(() => heard.length === 1)
  await db.query(`UPDATE cairn.model_version SET metrics = '{"a": 1}'::jsonb WHERE model = 'churn'`)
  await db.tx(async (q) => {
    await q.query(`UPDATE cairn.model_version SET stage = 'canary', traffic_share = 0.1 WHERE model = 'churn'`)
    await new Promise((r) => setTimeout(r, 200))
    assert.deepEqual(heard, ['churn'], 'nothing is sent before the commit')
  })
  await waitFor(() => heard.length >= 2)
  assert.deepEqual(heard, ['churn', 'churn'], 'a change of metrics alone is not announced')
})

async function waitFor(ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!ok() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
}
