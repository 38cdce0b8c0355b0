/**
 * The store's caches belong to the database they were read from: two databases in one process
 * (both numbering their DAG versions from 1) never see each other's entries, whether read through
 * the Db or through one of its transactions.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { getDagVersion } from '../../engine/store/dags.ts'
import { limitedPoolSlots } from '../../engine/store/advance.ts'
import { syncPools } from '../../engine/runtime/pools.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'

const log = testLogger()

async function database(t: { after(fn: () => Promise<void>): void }, dagId: string, gpuSlots: number): Promise<Db> {
  const db = createDb(await createTestDatabase(t), { log, max: 2 })
  t.after(() => db.close())
  await migrate(db, log)
  await db.query('INSERT INTO cairn.dag (dag_id) VALUES ($1)', [dagId])
  const spec = { format: 1, id: dagId, tags: [], timezone: 'UTC', catchup: 'latest', maxActiveRuns: 1, maxActiveTasks: 16, pausedOnLoad: false, params: {}, tasks: [] }
  const { rows } = await db.query<{ version_id: string }>(`INSERT INTO cairn.dag_version (dag_id, hash, spec, source) VALUES ($1, 'h', $2, '') RETURNING version_id`, [dagId, JSON.stringify(spec)])
  assert.equal(Number(rows[0]!.version_id), 1, 'both databases number their versions from 1')
  await syncPools(db, { pools: { gpu: { slots: gpuSlots } } })
  return db
}

test('two databases in one process do not see each other\'s cached DAG versions or pool limits', async (t) => {
  const first = await database(t, 'first', 1)
  const second = await database(t, 'second', 3)

  assert.equal((await getDagVersion(first, 1)).id, 'first')
  assert.equal((await getDagVersion(second, 1)).id, 'second')
  assert.equal((await second.tx((q) => getDagVersion(q, 1))).id, 'second', 'a transaction shares its Db\'s cache')
  assert.equal((await first.tx((q) => getDagVersion(q, 1))).id, 'first')

  assert.deepEqual(await limitedPoolSlots(first), new Map([['gpu', 1]]))
  assert.deepEqual(await limitedPoolSlots(second), new Map([['gpu', 3]]))
  assert.deepEqual(await second.tx((q) => limitedPoolSlots(q)), new Map([['gpu', 3]]))

  // The cache is real: a row changed behind its back is still served from it (versions never change).
  await first.query(`UPDATE cairn.dag_version SET spec = jsonb_set(spec, '{id}', '"renamed"') WHERE version_id = 1`)
  assert.equal((await first.tx((q) => getDagVersion(q, 1))).id, 'first')
})
