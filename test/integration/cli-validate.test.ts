import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fromPlainNames, toPlainNames } from '../../engine/dag/dag-semantics.ts'

const cli = new URL('../../bin/cairn.js', import.meta.url).pathname
const repo = new URL('../..', import.meta.url).pathname

function cairn(args: string[], cwd: string, env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...env } })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

function workspace(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-cli-'))
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true })
    writeFileSync(join(dir, name), text)
  }
  return dir
}

test('the example DAGs and cairn.yaml of the repository validate', () => {
  const run = cairn(['validate'], repo)
  assert.equal(run.stdout, '')
  assert.equal(run.code, 0, run.stderr)
  assert.match(run.stderr, /0 errors/)
})

test('problems print as FILE:LINE:COL: error CODE: message and exit 1', (t) => {
  const dir = workspace({
    'dags/a.yaml': 'dag: a\ntasks:\n  x:\n    operator: noop\n    depends_on: [y]\n',
    'dags/b.yaml': 'dag: a\ntasks:\n  x: { operator: nop }\n',
  })
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const run = cairn(['validate'], dir)
  assert.equal(run.code, 1)
  assert.deepEqual(run.stdout.trim().split('\n'), [
    'dags/a.yaml:5:18: error UNKNOWN_DEPENDENCY: task "x" depends on "y", which is not a task of this DAG',
    'dags/b.yaml:1:6: error DUPLICATE_DAG_ID: DAG "a" is already declared in dags/a.yaml',
    'dags/b.yaml:3:18: error UNKNOWN_OPERATOR: unknown operator "nop" in task "x" (did you mean "noop"?); known: shell, noop, ingest, features.materialize, features.training_set, train, evaluate.gate, evaluate.drift, predict.batch, serve.rollout',
  ])
})

test('--format json prints the documented shape', (t) => {
  const dir = workspace({ 'x.yaml': 'dag: x\nschedule: "61 * * * *"\nstart_date: 2026-01-01\ntasks: { a: { operator: noop } }\n' })
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const run = cairn(['validate', 'x.yaml', '--format', 'json'], dir)
  assert.equal(run.code, 1)
  const out = JSON.parse(run.stdout) as Record<string, unknown>[]
  assert.equal(out.length, 1)
  assert.deepEqual(Object.keys(out[0]!).sort(), ['code', 'column', 'file', 'line', 'message', 'path', 'severity'])
  assert.deepEqual({ ...out[0], message: undefined }, { file: 'x.yaml', line: 2, column: 11, path: 'schedule', code: 'INVALID_CRON', message: undefined, severity: 'error' })
})

test('a valid file prints nothing on stdout and exits 0; JSON is an empty array', (t) => {
  const dir = workspace({ 'ok.yaml': 'dag: ok\ntasks: { a: { operator: noop } }\n' })
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  assert.equal(cairn(['validate', 'ok.yaml'], dir).code, 0)
  const json = cairn(['validate', 'ok.yaml', '--format', 'json'], dir)
  assert.equal(json.code, 0)
  assert.deepEqual(JSON.parse(json.stdout), [])
})

test('usage errors exit 2: missing path, bad format, unknown command, unknown option', (t) => {
  const dir = workspace({ 'ok.yaml': 'dag: ok\ntasks: { a: { operator: noop } }\n' })
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  assert.equal(cairn(['validate', 'nope.yaml'], dir).code, 2)
  assert.equal(cairn(['validate', '--format', 'xml'], dir).code, 2)
  assert.equal(cairn(['frobnicate'], dir).code, 2)
  assert.equal(cairn(['validate', '--frob'], dir).code, 2)
})

test('CAIRN_DAGS selects the folder; cairn.yaml pools and clusters are checked', (t) => {
  const dir = workspace({
    'cairn.yaml': 'pools:\n  gpu: { slots: 1 }\n',
    'flows/a.yaml': 'dag: a\ntasks:\n  x: { operator: noop, pool: gpu }\n  y: { operator: noop, pool: tpu }\n',
  })
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const run = cairn(['validate'], dir, { CAIRN_DAGS: 'flows' })
  assert.equal(run.code, 1)
  assert.match(run.stdout, /^flows\/a\.yaml:4:30: error UNKNOWN_POOL: pool "tpu" is not defined in cairn\.yaml/)
})

test('cairn.yaml workers.queues lists the queues DAGs may name', (t) => {
  // The names reach helper threads (used for large folders) as plain arrays.
  const names = { pools: new Set(['gpu']), clusters: new Set<string>(), queues: new Set(['default', 'team_a']) }
  assert.deepEqual(fromPlainNames(structuredClone(toPlainNames(names))), names)
  const files: Record<string, string> = { 'cairn.yaml': 'workers:\n  queues: [team_a]\n' }
  // 200 files: enough for helper threads when the machine has cores to spare.
  for (let i = 0; i < 200; i++) files[`dags/d${String(i).padStart(3, '0')}.yaml`] = `dag: d${i}\ntasks:\n  a: { operator: noop, queue: ${i === 77 ? 'team_b' : 'team_a'} }\n`
  const dir = workspace(files)
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const run = cairn(['validate'], dir)
  assert.equal(run.code, 1)
  assert.deepEqual(run.stdout.trim().split('\n').filter((line) => line.includes('error')), ['dags/d077.yaml:3:31: error UNKNOWN_QUEUE: queue "team_b" is not listed in cairn.yaml workers.queues (known: default, team_a)'])
  // Without workers.queues any queue name is accepted.
  writeFileSync(join(dir, 'cairn.yaml'), 'workers:\n  concurrency: 2\n')
  assert.equal(cairn(['validate'], dir).code, 0)
})

test('serve.rollout may name only the model servers of cairn.yaml (default always)', (t) => {
  const rollout = (server: string) => `    operator: serve.rollout\n    params: { model_name: churn, version: 2, server: ${server}, steps: [100], step_duration: 1m, analysis: { min_requests: 0, max_error_rate: 0.1, max_p99_latency_ms: 50 } }\n`
  const names = { pools: new Set<string>(), clusters: new Set<string>(), modelServers: new Set(['default', 'edge']) }
  assert.deepEqual(fromPlainNames(structuredClone(toPlainNames(names))), names)
  const dir = workspace({
    'cairn.yaml': 'model_servers:\n  edge: { host: 10.0.0.5, port: 8081 }\n',
    'dags/r.yaml': `dag: r\ntasks:\n  a:\n${rollout('edge')}  b:\n${rollout('default')}  c:\n${rollout('eu')}`,
  })
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const run = cairn(['validate'], dir)
  assert.equal(run.code, 1)
  assert.deepEqual(run.stdout.trim().split('\n').filter((line) => line.includes('error')), ['dags/r.yaml:11:54: error UNKNOWN_MODEL_SERVER: server "eu" is not a model server of cairn.yaml (declared: default, edge; default is the one `cairn up` runs); add it under model_servers or name one of these'])
  // Without model_servers only default is declared.
  writeFileSync(join(dir, 'cairn.yaml'), 'pools:\n  gpu: { slots: 1 }\n')
  assert.match(cairn(['validate'], dir).stdout, /dags\/r\.yaml:5:54: error UNKNOWN_MODEL_SERVER: server "edge" is not a model server of cairn\.yaml \(declared: default;/)
})

test('an invalid cairn.yaml is reported with positions', (t) => {
  const dir = workspace({ 'cairn.yaml': 'pools:\n  gpu: { slot: 1 }\n', 'dags/a.yaml': 'dag: a\ntasks: { x: { operator: noop } }\n' })
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const run = cairn(['validate'], dir)
  assert.equal(run.code, 1)
  assert.match(run.stdout, /^cairn\.yaml:2:10: error UNKNOWN_KEY: unknown key "slot"/m)
})

test('many files are validated on worker threads with the same results', (t) => {
  const files: Record<string, string> = {}
  for (let i = 0; i < 200; i++) files[`dags/d${String(i).padStart(3, '0')}.yaml`] = `dag: d${i}\ntasks:\n  a: { operator: noop }\n  b: { operator: noop, depends_on: ${i === 123 ? 'zz' : 'a'} }\n`
  const dir = workspace(files)
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const run = cairn(['validate', '--format', 'json'], dir)
  assert.equal(run.code, 1)
  const out = JSON.parse(run.stdout) as { file: string; code: string; line: number; column: number }[]
  assert.deepEqual(out.map((d) => [d.file, d.code, d.line, d.column]), [['dags/d123.yaml', 'UNKNOWN_DEPENDENCY', 4, 36]])
  assert.match(run.stderr, /^200 files checked/)
})
