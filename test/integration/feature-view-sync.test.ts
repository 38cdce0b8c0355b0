/**
 * The scheduler's DAG sync stores feature view files: a new view gets definition version 1, a
 * changed definition the next version (older versions kept), a descriptive change no new version,
 * a second file declaring the same name is an import error that changes nothing, and a view whose
 * file is gone is marked removed (its definitions stay).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDagSync } from '../../engine/scheduler/dag-sync.ts'
import { createDb } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { listFeatureViewDefinitions, listFeatureViews, readFeatureViewDefinition } from '../../engine/store/feature-views.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'

const view = (extra = '', description = 'Spend per user') => `feature_view: spend
description: ${description}
entity: user_id
source: events
timestamp: ts
ttl: 30d
features:
  spend_7d: { agg: sum, column: amount, window: 7d }
${extra}`

test('feature view files: definition versions, duplicates, removal', async (t) => {
  const log = testLogger()
  const db = createDb(await createTestDatabase(t), { log, max: 4 })
  await migrate(db, log)
  const dir = mkdtempSync(join(tmpdir(), 'cairn-fv-sync-'))
  mkdirSync(join(dir, 'dags', 'features'), { recursive: true })
  t.after(async () => {
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const sync = createDagSync({ folder: join(dir, 'dags'), cwd: dir, names: undefined, log })
  const now = Date.now() / 1000
  let tick = 0
  const write = (name: string, text: string, ageSeconds = 0) => {
    const path = join(dir, 'dags', name)
    writeFileSync(path, text)
    // A distinct time per write, so that the sync sees every change whatever the file system's resolution.
    tick += 1
    utimesSync(path, now - ageSeconds + tick, now - ageSeconds + tick)
  }
  const errors = async () => (await db.query<{ file: string; codes: string[] }>(
    `SELECT file, ARRAY(SELECT d->>'code' FROM jsonb_array_elements(diagnostics) d) AS codes FROM cairn.import_error ORDER BY file`,
  )).rows

  write('features/spend.yaml', view(), 100)
  await sync.sync(db)
  let views = await listFeatureViews(db)
  assert.deepEqual(views.map((v) => [v.name, v.file, v.currentVersion, v.removed, v.description]), [['spend', 'dags/features/spend.yaml', 1, false, 'Spend per user']])
  const v1 = (await readFeatureViewDefinition(db, 'spend'))!
  assert.deepEqual(v1.definition, {
    entity: ['user_id'], source: 'events', timestamp: 'ts', ttl_ms: 30 * 86_400_000, online: false,
    features: [{ name: 'spend_7d', agg: 'sum', column: 'amount', window_ms: 7 * 86_400_000 }],
  })

  // A descriptive change is no new definition.
  write('features/spend.yaml', view('', 'Spend of each user'), 90)
  await sync.sync(db)
  views = await listFeatureViews(db)
  assert.deepEqual(views.map((v) => [v.currentVersion, v.description]), [[1, 'Spend of each user']])

  // A changed feature is.
  write('features/spend.yaml', view('  events_1d: { agg: count, window: 1d }\n', 'Spend of each user'), 80)
  await sync.sync(db)
  assert.deepEqual((await listFeatureViewDefinitions(db, 'spend')).map((d) => [d.version, d.definition.features.length]), [[2, 2], [1, 1]])
  assert.equal((await listFeatureViews(db))[0]!.currentVersion, 2)

  // Another file declaring `spend`: an import error there, nothing changes.
  write('features/copy.yaml', view('  other: { agg: count }\n'), 10)
  await sync.sync(db)
  assert.deepEqual(await errors(), [{ file: 'dags/features/copy.yaml', codes: ['DUPLICATE_FEATURE_VIEW'] }])
  assert.equal((await listFeatureViews(db))[0]!.currentVersion, 2)
  assert.equal((await listFeatureViews(db))[0]!.file, 'dags/features/spend.yaml')

  // An invalid edit keeps the last good definition.
  write('features/spend.yaml', view('  broken: { agg: median, column: amount }\n'), 5)
  await sync.sync(db)
  assert.equal((await listFeatureViews(db))[0]!.currentVersion, 2)
  assert.ok((await errors()).some((e) => e.file === 'dags/features/spend.yaml'))

  // Both files gone: removed, definitions kept.
  unlinkSync(join(dir, 'dags', 'features', 'spend.yaml'))
  unlinkSync(join(dir, 'dags', 'features', 'copy.yaml'))
  await sync.sync(db)
  views = await listFeatureViews(db)
  assert.deepEqual(views.map((v) => [v.name, v.removed, v.currentVersion]), [['spend', true, 2]])
  assert.equal((await listFeatureViewDefinitions(db, 'spend')).length, 2)
  assert.deepEqual(await errors(), [])

  // Back again with the first definition: a new version (versions only grow), not removed.
  write('features/spend.yaml', view(), 0)
  await sync.sync(db)
  views = await listFeatureViews(db)
  assert.deepEqual(views.map((v) => [v.removed, v.currentVersion]), [[false, 3]])
})
