/**
 * `cairn validate` over valid files loads only the validator: not the database layer, the web
 * server, DuckDB, the careful YAML parser, js-yaml, Liquid, graphology or re2js (each loaded when
 * a file or a task needs it). A module graph that pulls one of them in costs every run its start-up
 * (DuckDB's bindings alone are nearly two hundred modules).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const bin = new URL('../../bin/cairn.js', import.meta.url).pathname
/** A DAG as most are written: a schedule, run parameters, shell tasks with templates, a script. */
const DAG = `dag: startup
schedule: "0 3 * * *"
timezone: Europe/Berlin
start_date: 2026-01-01
params:
  threshold: { type: number, default: 0.8, minimum: 0, maximum: 1 }
defaults:
  retries: 2
  retry_delay: 30s
tasks:
  extract:
    operator: shell
    env:
      RUN_ID: "{{ run.id }}"
    params:
      command: [python, extract.py, --ds, "{{ ds }}", --threshold, "{{ params.threshold }}"]
  report:
    operator: shell
    depends_on: [extract]
    params:
      script: |
        echo "done"
  done:
    operator: noop
    depends_on: [report]
`

const NOT_LOADED = ['@duckdb/', '/onnxruntime-node/', '/onnxruntime-common/', '/onnx-proto/', '/protobufjs/', '/pg/', '/pg-boss/', '/fastify/', '/pino/', '/graphology', '/re2js/', '/liquidjs/', '/js-yaml/', '/yaml/', 'node:crypto', 'node:child_process', 'engine/store/', 'engine/data/feature-store']

test('validating valid files loads none of the heavy modules', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-validate-startup-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'dags'))
  writeFileSync(join(dir, 'dags', 'a.yaml'), DAG)
  const list = join(dir, 'loaded.json')
  // Records every module and built-in loaded (load hook), written when the process exits.
  const hook = [
    `import module from 'node:module'`,
    `import { writeFileSync } from 'node:fs'`,
    `const loaded = []`,
    `module.registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context) } })`,
    `process.on('exit', () => writeFileSync(${JSON.stringify(list)}, JSON.stringify(loaded)))`,
  ].join('\n')
  const run = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(hook)}`, bin, 'validate', 'dags'], { cwd: dir, encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  const loaded = JSON.parse(readFileSync(list, 'utf8')) as string[]
  assert.ok(loaded.some((url) => url.endsWith('engine/dag/validate.ts')), 'the hook saw the validator load')
  for (const name of NOT_LOADED) assert.deepEqual(loaded.filter((url) => url.includes(name)), [], `${name} is loaded`)
})
