/**
 * `cairn models list|show|register` as a user runs them: real CLI processes on the database
 * (DATABASE_URL) and data directory (CAIRN_HOME/datasets) of a deployment.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createModels } from '../../engine/models/registry.ts'
import { startCliDeployment } from '../helpers/cli-deployment.ts'

test('cairn models: register, list, show (text and json), unknown model and version', { timeout: 120_000 }, async (t) => {
  const { dir, dataDir, db, cairn } = await startCliDeployment(t)

  const empty = await cairn('models', 'list')
  assert.equal(empty.code, 0, empty.stderr)
  assert.match(empty.stderr, /no models yet/)

  writeFileSync(join(dir, 'm.onnx'), 'onnx bytes')
  const registered = await cairn('models', 'register', 'churn', 'm.onnx', '--features', 'a,b', '--task', 'binary')
  assert.equal(registered.code, 0, registered.stderr)
  // SPEC section 7: `register` prints the version as its last line.
  assert.equal(registered.stdout.trim().split('\n').at(-1), '1')
  assert.match(registered.stderr, /models:\/churn\/1/)
  assert.equal(readFileSync(join(dataDir, '_models', 'churn', '1', 'model.onnx'), 'utf8'), 'onnx bytes')

  await createModels({ db, dir: dataDir, producer: { kind: 'actor', actor: 'test' } }).setStage('churn', 1, 'production', { user: 'test' }, 1)
  const listed = await cairn('models', 'list', '--format', 'json')
  assert.equal(listed.code, 0, listed.stderr)
  const [summary] = JSON.parse(listed.stdout) as Record<string, unknown>[]
  // The versions with stage, traffic share, metrics, created_at and lineage (SPEC section 7, CLI).
  const listedVersions = summary!.versions as Record<string, unknown>[]
  assert.deepEqual({ ...summary, created_at: 'x', versions: 'x' }, { name: 'churn', latest_version: 1, production: 1, canary: null, created_at: 'x', versions: 'x' })
  assert.deepEqual(listedVersions.map((v) => [v.version, v.stage, v.traffic_share, v.metrics, v.lineage, typeof v.created_at]), [[1, 'production', 1, {}, {}, 'string']])
  const table = await cairn('models', 'list')
  assert.match(table.stdout, /MODEL\s+LATEST\s+PRODUCTION\s+CANARY/)

  const shown = await cairn('models', 'show', 'churn', '--format', 'json')
  assert.equal(shown.code, 0, shown.stderr)
  const version = JSON.parse(shown.stdout) as Record<string, unknown>
  assert.equal(version.uri, 'models:/churn/1')
  assert.equal(version.stage, 'production')
  assert.equal(version.sha256, createHash('sha256').update('onnx bytes').digest('hex'))
  assert.deepEqual(version.features, ['a', 'b'])
  assert.equal(version.task_kind, 'binary')
  const text = await cairn('models', 'show', 'churn')
  assert.match(text.stdout, /stage\s+production/)

  // A second version: `show` lists every version, newest first, beside the one shown.
  writeFileSync(join(dir, 'm2.onnx'), 'onnx bytes 2')
  const second = await cairn('models', 'register', 'churn', 'm2.onnx')
  assert.equal(second.stdout.trim().split('\n').at(-1), '2')
  const both = JSON.parse((await cairn('models', 'show', 'churn', '--format', 'json')).stdout) as Record<string, unknown>
  assert.deepEqual([both.version, both.stage, both.latest_version], [2, 'candidate', 2])
  assert.deepEqual((both.versions as Record<string, unknown>[]).map((v) => [v.version, v.stage, v.traffic_share, typeof v.created_at, typeof v.metrics, typeof v.lineage]), [
    [2, 'candidate', 0, 'string', 'object', 'object'],
    [1, 'production', 1, 'string', 'object', 'object'],
  ])
  const bothText = await cairn('models', 'show', 'churn')
  assert.match(bothText.stdout, /VERSION\s+STAGE\s+TRAFFIC/)
  assert.match(bothText.stdout, /\n\s*1\s+production\s+1\b/)
  const listedTwo = JSON.parse((await cairn('models', 'list', '--format', 'json')).stdout) as { versions: { version: number }[] }[]
  assert.deepEqual(listedTwo[0]!.versions.map((v) => v.version), [2, 1])

  const unknown = await cairn('models', 'show', 'nope')
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /no model "nope"/)
  const noVersion = await cairn('models', 'show', 'churn', '--version', '5')
  assert.equal(noVersion.code, 1)
  assert.match(noVersion.stderr, /has no version 5 \(the latest is 2\)/)
  const missing = await cairn('models', 'register', 'churn', 'absent.onnx')
  assert.equal(missing.code, 1)
  const badName = await cairn('models', 'register', 'Churn', 'm.onnx')
  assert.equal(badName.code, 2)
})
