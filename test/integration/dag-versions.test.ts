import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startTestEngine, taskWritableDir } from '../helpers/engine.ts'
import { waitFor } from '../helpers/engine-extra.ts'

const version = (word: string, firstSleep: string): string => `dag: versioned
tasks:
  first:
    operator: shell
    params: { command: [sleep, "${firstSleep}"] }
  second:
    operator: shell
    depends_on: first
    params: { command: [sh, -c, 'printf %s ${word} > "$0"', OUT] }
`

test('a running run keeps the DAG version it started with; a broken file keeps the last good version', async (t) => {
  const engine = await startTestEngine(t, { dags: { 'v.yaml': version('old', '2') } })
  const out = join(taskWritableDir(join(engine.dir, 'files')), 'second.out')
  engine.writeDag('v.yaml', version('old', '2').replace('OUT', out))
  await waitFor('the version writing to OUT', async () => (await engine.db.query(`SELECT 1 FROM cairn.dag_version WHERE source LIKE $1`, [`%${out}%`])).rows.length > 0, 20_000, 50)
  engine.spawnWorker()
  const runId = await engine.trigger('versioned')
  await waitFor('the first task to run', async () => (await engine.taskStates(runId)).first === 'running', 20_000, 50)

  // Change the file while the run is in its first task: the run must finish with the version it started with.
  engine.writeDag('v.yaml', version('new', '0').replace('OUT', out))
  await waitFor('the new version', async () => (await engine.db.query(`SELECT 1 FROM cairn.dag_version WHERE source LIKE '%new%'`)).rows.length > 0, 20_000, 50)
  assert.equal(await engine.waitForRun(runId), 'success')
  assert.equal(readFileSync(out, 'utf8'), 'old')

  // New runs take the new version.
  const second = await engine.trigger('versioned')
  assert.equal(await engine.waitForRun(second), 'success')
  assert.equal(readFileSync(out, 'utf8'), 'new')

  // A broken file is an import error with positions; the DAG keeps its last good version and still runs.
  engine.writeDag('v.yaml', 'dag: versioned\ntasks:\n  first: { operator: nope }\n')
  await waitFor('the import error', async () => (await engine.db.query(`SELECT 1 FROM cairn.import_error WHERE dag_id = 'versioned'`)).rows.length > 0, 20_000, 50)
  const errors = await engine.db.query<{ diagnostics: { code: string; line: number; column: number }[] }>(`SELECT diagnostics FROM cairn.import_error WHERE dag_id = 'versioned'`)
  assert.deepEqual(errors.rows[0]!.diagnostics.map((d) => [d.code, d.line, d.column]), [['UNKNOWN_OPERATOR', 3, 22]])
  const third = await engine.trigger('versioned')
  assert.equal(await engine.waitForRun(third), 'success')
  const versions = await engine.db.query<{ n: string }>(`SELECT count(*) AS n FROM cairn.dag_version WHERE dag_id = 'versioned'`)
  assert.equal(Number(versions.rows[0]!.n), 3)
})
