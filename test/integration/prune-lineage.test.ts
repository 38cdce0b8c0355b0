/**
 * `cairn db prune` and what runs made: dataset versions and model versions outlive the runs that
 * produced them. Pruning a run that ingested a dataset version and trained a (production) model
 * version keeps both, their files and their lineage, and the lineage then says that the run is gone
 * (`run_pruned`) instead of pointing at a run that no longer answers; so do the feature view intervals
 * the run materialized.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startTestEngine } from '../helpers/engine.ts'
import { runCommand } from '../helpers/engine-extra.ts'
import type { CommandResult } from '../helpers/engine-extra.ts'
import { rawRequest, startTestWeb } from '../helpers/web-client.ts'
import { taskRows, waitForDags } from '../helpers/run-rows.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'
import { createDb } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { pruneFinishedRuns } from '../../engine/store/prune.ts'
import { insertDatasetVersion, readDatasetVersion } from '../../engine/store/datasets.ts'
import type { NewVersion } from '../../engine/store/datasets.ts'
import { findRegisteredBy, insertModelVersion, lockNextModelVersion, readModelVersion } from '../../engine/store/models.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'
import { sweepStagedFolders } from '../../engine/data/staged-sweep.ts'
import { normalizeFeatureView } from '../../engine/data/feature-definition.ts'
import { saveFeatureViews } from '../../engine/store/feature-views.ts'
import { replaceMaterialization } from '../../engine/store/feature-materializations.ts'
import { listMaterializedIntervals } from '../../engine/store/feature-view-reads.ts'

const MAIN = new URL('../../engine/cli/main.ts', import.meta.url).pathname

const DAG = `dag: make
tasks:
  load:
    operator: ingest
    params:
      source: { kind: csv, path: toy.csv }
      dataset: toy
      columns: { a: { type: number }, b: { type: number }, y: { type: boolean } }
  fit:
    operator: train
    depends_on: load
    params:
      executor: local
      nodes: 1
      trainer: { dataset: toy, label: y, features: [a, b], task: binary, model: { kind: logistic }, epochs: 2, batch_size: 32, learning_rate: 0.05, seed: 3 }
      model_name: toy_model
`

test('pruning the run that made a dataset version and a production model version keeps both, their files and a readable lineage', { timeout: 300_000 }, async (t) => {
  const engine = await startTestEngine(t, { dags: { 'make.yaml': DAG }, inProcessWorkers: 1 })
  const csv = ['a,b,y', ...Array.from({ length: 80 }, (_, i) => {
    const a = Math.sin(i * 1.3)
    const b = Math.cos(i * 0.7)
    return `${a},${b},${a + 2 * b > 0}`
  })]
  writeFileSync(join(engine.dagsFolder, 'toy.csv'), csv.join('\n') + '\n')
  await waitForDags(engine.db, ['make'])
  const runId = await engine.trigger('make')
  const state = await engine.waitForRun(runId, 240_000)
  assert.equal(state, 'success', JSON.stringify([...(await taskRows(engine.db, runId)).values()].map((r) => [r.task_id, r.state, r.message])))

  const env = { ...process.env, DATABASE_URL: engine.url, CAIRN_HOME: join(engine.dir, 'home'), CAIRN_LOG_LEVEL: 'warn' }
  const json = async (args: string[]): Promise<any> => {
    const result = await cairn(args, engine.dir, env)
    assert.equal(result.code, 0, `cairn ${args.join(' ')}: ${result.stderr}`)
    return JSON.parse(result.stdout)
  }
  assert.equal((await cairn(['models', 'stage', 'toy_model', '1', 'production'], engine.dir, env)).code, 0)

  const { app, base } = await startTestWeb({ db: engine.db, log: testLogger(), data: { dir: engine.data.dir } })
  t.after(() => app.close())
  const token = (await createToken(engine.db, { name: 'reader', role: 'viewer' }))!.token
  const get = async (path: string): Promise<any> => {
    const response = await rawRequest(base, 'GET', path, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(response.status, 200, `${path}: ${response.body}`)
    return response.json()
  }

  // Before: the run is there, and the lineage says so.
  const before = await json(['datasets', 'show', 'toy', '--format', 'json'])
  assert.deepEqual(before.produced_by, { run_id: runId, task_id: 'load', run_pruned: false })
  assert.equal((await json(['models', 'show', 'toy_model', '--format', 'json'])).lineage.run_pruned, false)
  const modelBefore = (await get('/api/v1/models/toy_model')).versions[0]
  assert.equal(modelBefore.lineage.run, runId)
  assert.equal(modelBefore.lineage.run_pruned, false)
  const exportedBefore = await cairn(['datasets', 'export', 'toy'], engine.dir, env)
  assert.equal(exportedBefore.code, 0, exportedBefore.stderr)

  // The run ended 100 days ago: prune takes it, with its attempts (the claim that staged the version's folder).
  await engine.db.query(`UPDATE cairn.run SET queued_at = queued_at - interval '100 days', started_at = started_at - interval '100 days', ended_at = ended_at - interval '100 days' WHERE run_id = $1`, [runId])
  const pruned = await json(['db', 'prune', '--older-than', '90d', '--format', 'json'])
  assert.equal(pruned.runs, 1)
  assert.equal((await engine.db.query('SELECT 1 FROM cairn.run WHERE run_id = $1', [runId])).rows.length, 0)
  // The orphan sweep, which removes folders whose attempt is gone unless a version names them, keeps the version's files.
  assert.deepEqual(await sweepStagedFolders(engine.db, engine.data.dir), [])

  // The dataset version: still shown, still exported row for row, its lineage names the run and says it is gone.
  const after = await json(['datasets', 'show', 'toy', '--format', 'json'])
  assert.deepEqual(after, { ...before, produced_by: { run_id: runId, task_id: 'load', run_pruned: true } })
  const text = await cairn(['datasets', 'show', 'toy'], engine.dir, env)
  assert.match(text.stdout, new RegExp(`made by +ingest: run ${runId}, task load, attempt 1 \\(run pruned\\)`))
  const exportedAfter = await cairn(['datasets', 'export', 'toy'], engine.dir, env)
  assert.equal(exportedAfter.code, 0, exportedAfter.stderr)
  assert.equal(exportedAfter.stdout, exportedBefore.stdout)
  const versions = await get('/api/v1/datasets/toy/versions')
  assert.deepEqual(versions.versions[0].produced_by, { run_id: runId, task_id: 'load', run_pruned: true })
  const graph = await get('/api/v1/datasets/toy/versions/1/lineage')
  const root = graph.nodes.find((n: { id: string }) => n.id === 'dataset:toy@1')
  assert.deepEqual(root.produced_by, { run_id: runId, task_id: 'load', run_pruned: true })
  assert.equal((await get('/api/v1/datasets/toy/versions/1/rows?limit=3')).total, 80)

  // The model version: still production, its file still there, its lineage says the run is gone.
  const model = await json(['models', 'show', 'toy_model', '--format', 'json'])
  assert.equal(model.stage, 'production')
  assert.equal(model.lineage.run, runId)
  assert.equal(model.lineage.run_pruned, true)
  assert.deepEqual(model.lineage.dataset, { name: 'toy', version: 1 })
  assert.ok(existsSync(join(engine.data.dir, model.artifact)), `${model.artifact} is gone`)
  const api = (await get('/api/v1/models/toy_model')).versions[0]
  assert.deepEqual(api, { ...modelBefore, lineage: { ...modelBefore.lineage, run_pruned: true } })
})

function cairn(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<CommandResult> {
  return runCommand(process.execPath, [MAIN, ...args], { cwd, env })
}

test('a pruned run whose id is given again is another run: it publishes its own versions and is not taken for the maker of the old ones', async (t) => {
  const log = testLogger()
  const db = createDb(await createTestDatabase(t), { log })
  t.after(() => db.close())
  await migrate(db, log)
  // A scheduled run's id is its DAG and logical date, so the same id can come back once the run is pruned.
  const RUN = 'make__scheduled__20250101T0200Z'
  await db.query(`INSERT INTO cairn.dag (dag_id, file) VALUES ('make', 'make.yaml')`)
  const { rows } = await db.query<{ version_id: string }>(`INSERT INTO cairn.dag_version (dag_id, hash, spec, source) VALUES ('make', 'h', '{}'::jsonb, '') RETURNING version_id`)
  const createRun = () => db.query(
    `INSERT INTO cairn.run (run_id, dag_id, version_id, run_type, state, logical_date, data_interval_start, data_interval_end, ended_at)
     VALUES ($1, 'make', $2, 'scheduled', 'success', '2025-01-01T02:00Z', '2025-01-01T02:00Z', '2025-01-02T02:00Z', now())`,
    [RUN, rows[0]!.version_id],
  )
  const version = (location: string): NewVersion => ({
    dataset: 'events', location, columns: [{ name: 'a', type: 'integer' }], rows: 1, bytes: 1, fingerprint: 'same-rows', producedKind: 'ingest', runId: RUN, taskId: 'load', attempt: 1, inputs: [],
  })
  const registerModel = () => db.tx(async (q) => insertModelVersion(q, {
    model: 'churn', version: await lockNextModelVersion(q, 'churn'), artifact: 'x.onnx', sha256: 'a'.repeat(64), metrics: {}, lineage: { run: RUN, task: 'fit' }, features: [], taskKind: 'binary', runId: RUN, taskId: 'fit', actor: { run: RUN, task: 'fit' },
  }))

  await createRun()
  // A feature view materialized by the run (its interval's link on the page goes to the run).
  const view = normalizeFeatureView({ feature_view: 'activity', entity: ['user_id'], source: 'events', timestamp: 'ts', features: { n: { agg: 'count' } } })
  await db.tx((q) => saveFeatureViews(q, [{ name: 'activity', file: 'activity.yaml', hash: view.hash, definitionJson: view.definitionJson, source: '', description: null, owner: null, tags: [] }]))
  await db.tx((q) => replaceMaterialization(q, {
    view: 'activity', definitionVersion: 1, intervalStart: new Date('2025-01-01T02:00Z'), intervalEnd: new Date('2025-01-02T02:00Z'), location: 'features/activity/one',
    rows: 1, sourceDataset: 'events', sourceVersion: 1, onlineRows: null, runId: RUN, taskId: 'features', attempt: 1,
  }))
  const materializedBy = async () => (await listMaterializedIntervals(db, 'activity', 10)).map((i) => [i.runId, i.runPruned])
  assert.deepEqual(await materializedBy(), [[RUN, false]])
  const first = await db.tx((q) => insertDatasetVersion(q, version('events/one')))
  assert.equal(first.kind, 'published')
  // A retry of the same run with the same rows gets the version it published (a lost report).
  assert.equal((await db.tx((q) => insertDatasetVersion(q, version('events/retry')))).kind, 'reused')
  await registerModel()
  assert.equal((await findRegisteredBy(db, 'churn', RUN, 'fit', 'a'.repeat(64)))?.version, 1)

  await db.query(`UPDATE cairn.run SET queued_at = queued_at - interval '100 days', ended_at = ended_at - interval '100 days'`)
  assert.equal((await pruneFinishedRuns(db, { before: new Date(Date.now() - 90 * 86_400_000) })).runs, 1)
  assert.equal((await readDatasetVersion(db, 'events', 1))!.runPruned, true)
  assert.deepEqual(await materializedBy(), [[RUN, true]], 'the interval stays materialized and says its run is gone')
  await createRun()
  assert.deepEqual(await materializedBy(), [[RUN, true]], 'a run queued after the interval was written did not write it')

  // The new run with the old id publishes its own version (the latest), though its rows are the same.
  const again = await db.tx((q) => insertDatasetVersion(q, version('events/two')))
  assert.equal(again.kind, 'published')
  assert.equal(again.kind === 'published' && again.row.version, 2)
  assert.equal((await readDatasetVersion(db, 'events', 1))!.runPruned, true, 'version 1 was made by the pruned run, not by the new one')
  assert.equal((await readDatasetVersion(db, 'events', 2))!.runPruned, false)
  assert.equal(await findRegisteredBy(db, 'churn', RUN, 'fit', 'a'.repeat(64)), undefined, "the pruned run's model version is not the new run's")
  assert.equal((await readModelVersion(db, 'churn', 1))!.runPruned, true)
})
