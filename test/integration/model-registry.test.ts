/**
 * The model registry on real Postgres: versions numbered in commit order with the file copied and its
 * checksum kept, lineage from the run and the training dataset, references resolved, one production
 * and one canary version per model enforced by the database, every stage change audited, and an
 * attempt that lost its claim registering nothing.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { createModels, parseModelReference } from '../../engine/models/registry.ts'
import { startTestRegistry } from '../helpers/model-registry.ts'

test('models: register, checksum, lineage, references, one production and one canary, audit, fencing', async (t) => {
  const { db, dir } = await startTestRegistry(t)
  const file = join(dir, 'trained.onnx')
  writeFileSync(file, 'model bytes one')

  // A run with a running attempt that holds its claim.
  await db.query(`INSERT INTO cairn.dag (dag_id, file) VALUES ('d', 'd.yaml')`)
  const { rows: dv } = await db.query<{ version_id: string }>(`INSERT INTO cairn.dag_version (dag_id, hash, spec, source) VALUES ('d', 'h', '{}'::jsonb, '') RETURNING version_id`)
  await db.query(`INSERT INTO cairn.run (run_id, dag_id, version_id, run_type, state, logical_date, data_interval_start, data_interval_end) VALUES ('r1', 'd', $1, 'manual', 'running', now(), now(), now())`, [dv[0]!.version_id])
  await db.query(`INSERT INTO cairn.task_instance (run_id, task_id, state, attempt) VALUES ('r1', 'train', 'running', 1)`)
  const { rows: claim } = await db.query<{ claim_id: string }>(`INSERT INTO cairn.attempt (run_id, task_id, attempt, state, claim_id) VALUES ('r1', 'train', 1, 'running', gen_random_uuid()) RETURNING claim_id`)
  const models = createModels({ db, dir, producer: { kind: 'attempt', runId: 'r1', taskId: 'train', attempt: 1, claimId: claim[0]!.claim_id } })

  const { version: v1, reused } = await models.register({
    name: 'churn',
    file,
    metrics: { validation: { auc: 0.8 } },
    features: ['a', 'b'],
    taskKind: 'binary',
    dataset: { name: 'churn_training', version: 3, inputs: [{ dataset: 'churn_labels', version: 1 }, { feature_view: 'user_activity', definition_version: 2 }] },
  })
  assert.equal(reused, false)
  assert.equal(v1.version, 1)
  assert.equal(v1.stage, 'candidate')
  assert.equal(v1.uri, 'models:/churn/1')
  assert.equal(v1.path, join(dir, '_models', 'churn', '1', 'model.onnx'))
  assert.equal(v1.sha256, createHash('sha256').update(readFileSync(file)).digest('hex'))
  assert.equal(readFileSync(v1.path, 'utf8'), 'model bytes one')
  assert.deepEqual(v1.lineage, { run: 'r1', task: 'train', attempt: 1, dag_version: Number(dv[0]!.version_id), dataset: { name: 'churn_training', version: 3 }, feature_views: [{ feature_view: 'user_activity', definition_version: 2 }] })
  assert.deepEqual(v1.metrics, { validation: { auc: 0.8 } })

  // A retry of the same task instance with the same file gets the same version.
  const again = await models.register({ name: 'churn', file })
  assert.deepEqual([again.reused, again.version.version], [true, 1])
  writeFileSync(file, 'model bytes two')
  const v2 = (await models.register({ name: 'churn', file })).version
  writeFileSync(file, 'model bytes three')
  const v3 = (await models.register({ name: 'churn', file })).version
  assert.deepEqual([v2.version, v3.version], [2, 3])

  // References.
  assert.deepEqual(parseModelReference('models:/churn/2'), { name: 'churn', version: 2 })
  assert.deepEqual(parseModelReference('models:/churn/production'), { name: 'churn', stage: 'production' })
  assert.equal(parseModelReference('models:/churn/staging'), undefined)
  assert.equal(parseModelReference('models:/Churn/1'), undefined)
  const r2 = await models.resolve('models:/churn/2')
  assert.deepEqual(r2.ok && [r2.path, r2.version, r2.sha256], [v2.path, 2, v2.sha256])
  const candidate = await models.resolve('models:/churn/candidate')
  assert.equal(candidate.ok && candidate.version, 3)
  const none = await models.resolve('models:/churn/production')
  assert.deepEqual(none, { ok: false, message: 'model churn has no production version' })
  assert.equal((await models.resolve('models:/churn/9')).ok, false)
  const byPath = await models.resolve('trained.onnx', dir)
  assert.deepEqual(byPath, { ok: true, path: file })
  assert.equal((await models.resolve('missing.onnx', dir)).ok, false)
  assert.equal((await models.resolve('model.pkl', dir)).ok, false)

  // Stages: the database refuses a second production or canary version of a model.
  await models.setStage('churn', 1, 'production', { user: 'alice' }, 1)
  await assert.rejects(models.setStage('churn', 2, 'production', { user: 'alice' }), (e: { code?: string }) => e.code === '23505')
  await models.setStage('churn', 2, 'canary', { token: 'tok-1' }, 0.1)
  await assert.rejects(models.setStage('churn', 3, 'canary', { user: 'bob' }), (e: { code?: string }) => e.code === '23505')
  await assert.rejects(db.query(`UPDATE cairn.model_version SET stage = 'staging' WHERE model = 'churn' AND version = 3`), (e: { code?: string }) => e.code === '23514')
  const production = await models.resolve('models:/churn/production')
  assert.equal(production.ok && production.version, 1)
  // Promote the canary: archive production first, in order.
  await models.setStage('churn', 1, 'archived', { user: 'alice' })
  await models.setStage('churn', 2, 'production', { user: 'alice' }, 1)
  assert.equal((await models.get('churn', 2))!.trafficShare, 1)
  assert.deepEqual((await models.list()).map((m) => [m.name, m.latestVersion, m.production, m.canary]), [['churn', 3, 2, null]])

  const { audit } = await models.history('churn')
  assert.deepEqual(audit.map((a) => [a.version, a.fromStage, a.toStage, a.actor]), [
    [1, null, 'candidate', { run: 'r1', task: 'train' }],
    [2, null, 'candidate', { run: 'r1', task: 'train' }],
    [3, null, 'candidate', { run: 'r1', task: 'train' }],
    [1, 'candidate', 'production', { user: 'alice' }],
    [2, 'candidate', 'canary', { token: 'tok-1' }],
    [1, 'production', 'archived', { user: 'alice' }],
    [2, 'canary', 'production', { user: 'alice' }],
  ])

  // An attempt that no longer holds its claim registers nothing.
  await db.query(`UPDATE cairn.attempt SET state = 'cancelled' WHERE claim_id = $1`, [claim[0]!.claim_id]).catch(async () => {
    await db.query(`UPDATE cairn.attempt SET claim_id = gen_random_uuid() WHERE claim_id = $1`, [claim[0]!.claim_id])
  })
  writeFileSync(file, 'model bytes four')
  await assert.rejects(models.register({ name: 'churn', file }), /no longer holds/)
  assert.equal((await models.get('churn'))!.version, 3)
  assert.equal(existsSync(join(dir, '_models', 'churn', '4')), false)
})

test('a model\'s history is one snapshot: its versions agree with its stage changes while promotions go on', async (t) => {
  const { models, register } = await startTestRegistry(t)
  for (let i = 0; i < 3; i++) await register('churn', new TextEncoder().encode('model bytes'))
  await models.stage('churn', 1, 'production', { user: 'alice' })

  let promoting = true
  const promotions = (async () => {
    for (let i = 0; i < 150; i++) await models.stage('churn', 1 + ((i + 1) % 3), 'production', { user: 'alice' })
    promoting = false
  })()
  let reads = 0
  while (promoting) {
    const { versions, audit } = await models.history('churn')
    const production = versions.find((v) => v.stage === 'production')?.version
    const lastPromoted = audit.findLast((a) => a.toStage === 'production')?.version
    assert.equal(production, lastPromoted, `read ${reads}: versions say v${production} is production, the stage changes say v${lastPromoted}`)
    reads++
  }
  await promotions
  assert.ok(reads > 10, `only ${reads} reads during the promotions`)
})
