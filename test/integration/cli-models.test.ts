/**
 * `cairn models list|show|register` as a user runs them: real CLI processes on the database
 * (DATABASE_URL) and data directory (CAIRN_HOME/datasets) of a deployment.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { createModels } from '../../engine/models/registry.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'
import { runCommand } from '../helpers/engine-extra.ts'

const MAIN = new URL('../../engine/cli/main.ts', import.meta.url).pathname

test('cairn models: register, list, show (text and json), unknown model and version', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-cli-models-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const home = join(dir, 'home')
  mkdirSync(home)
  const log = testLogger()
  const url = await createTestDatabase(t)
  const db = createDb(url, { log })
  t.after(() => db.close())
  await migrate(db, log)
  const env = { ...process.env, DATABASE_URL: url, CAIRN_HOME: home, CAIRN_CONFIG: join(dir, 'cairn.yaml'), CAIRN_LOG_LEVEL: 'error' }
  const cairn = (...args: string[]) => runCommand(process.execPath, [MAIN, ...args], { cwd: dir, env })

  const empty = await cairn('models', 'list')
  assert.equal(empty.code, 0, empty.stderr)
  assert.match(empty.stderr, /no models yet/)

  writeFileSync(join(dir, 'm.onnx'), 'onnx bytes')
  const registered = await cairn('models', 'register', 'churn', 'm.onnx', '--features', 'a,b', '--task', 'binary')
  assert.equal(registered.code, 0, registered.stderr)
  assert.equal(registered.stdout.trim().split('\n').at(-1), 'models:/churn/1')
  assert.equal(readFileSync(join(home, 'datasets', '_models', 'churn', '1', 'model.onnx'), 'utf8'), 'onnx bytes')

  await createModels({ db, dir: join(home, 'datasets'), producer: { kind: 'actor', actor: 'test' } }).setStage('churn', 1, 'production', { user: 'test' }, 1)
  const listed = await cairn('models', 'list', '--format', 'json')
  assert.equal(listed.code, 0, listed.stderr)
  const [summary] = JSON.parse(listed.stdout) as Record<string, unknown>[]
  assert.deepEqual({ ...summary, created_at: 'x' }, { name: 'churn', latest_version: 1, production: 1, canary: null, created_at: 'x' })
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

  const unknown = await cairn('models', 'show', 'nope')
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /no model "nope"/)
  const noVersion = await cairn('models', 'show', 'churn', '--version', '5')
  assert.equal(noVersion.code, 1)
  assert.match(noVersion.stderr, /has no version 5 \(the latest is 1\)/)
  const missing = await cairn('models', 'register', 'churn', 'absent.onnx')
  assert.equal(missing.code, 1)
  const badName = await cairn('models', 'register', 'Churn', 'm.onnx')
  assert.equal(badName.code, 2)
})
