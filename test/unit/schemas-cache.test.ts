/**
 * The standalone validators are loaded with V8's code cache for them (schemas.ts loadStandalone):
 * loaded from the cache they must validate exactly as when compiled afresh, and a cache V8 refuses
 * is written again.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { codeCacheFile, schemas, standaloneCacheFile } from '../../engine/dag/schemas.ts'
import { loadYaml } from '../../engine/dag/yaml-load.ts'

const cacheDir = new URL('../../node_modules/.cache/cairn/', import.meta.url).pathname
const fixtures = new URL('../fixtures/dags/', import.meta.url).pathname

function fixtureValues(): unknown[] {
  const values: unknown[] = []
  for (const kind of ['valid', 'invalid']) {
    for (const name of readdirSync(join(fixtures, kind)).sort()) {
      const loaded = loadYaml(readFileSync(join(fixtures, kind, name)))
      if (loaded.ok) values.push(loaded.yaml.value)
    }
  }
  return values
}

/**
 * Loads the standalone file in a new process (V8 keeps compiled scripts per process, so a code cache
 * is only read by a process that has not compiled the source yet) and returns every validator's
 * verdict and errors on the values.
 */
function outcomesInNewProcess(file: string, valuesFile: string): unknown {
  const script = [
    `import { readFileSync } from 'node:fs'`,
    `import { loadStandalone } from ${JSON.stringify(new URL('../../engine/dag/schemas.ts', import.meta.url).href)}`,
    `const compiled = loadStandalone(${JSON.stringify(file)})`,
    `const values = JSON.parse(readFileSync(${JSON.stringify(valuesFile)}, 'utf8'))`,
    `const brief = (errors) => (errors ?? []).map((e) => [e.instancePath, e.schemaPath, e.keyword, e.params, e.message])`,
    `const out = values.flatMap((v) => [compiled.dag, compiled.featureView, compiled.config].map((f) => [f(v), brief(f.errors)]))`,
    `process.stdout.write(JSON.stringify(out))`,
  ].join('\n')
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
  assert.equal(run.status, 0, run.stderr)
  return JSON.parse(run.stdout) as unknown
}

test('validators loaded with the code cache validate exactly as without it; a refused cache is written again', (t) => {
  const compiled = schemas()
  // The file this checkout's schemas compile to (not the newest: another checkout sharing node_modules may have written one since).
  const standalone = standaloneCacheFile()
  assert.ok(existsSync(standalone), 'schemas() keeps a standalone file')
  // A copy beside it (so that it resolves Ajv's runtime the same way), with no code cache yet.
  const copy = join(cacheDir, `schemas-test${process.pid}.cjs`)
  copyFileSync(standalone, copy)
  const codeFile = codeCacheFile(copy)
  const valuesFile = join(cacheDir, `schemas-test${process.pid}.json`)
  t.after(() => {
    for (const file of [copy, codeFile, valuesFile]) rmSync(file, { force: true })
  })
  const values = fixtureValues()
  assert.ok(values.length > 50)
  writeFileSync(valuesFile, JSON.stringify(values))
  const brief = (errors: typeof compiled.dag.errors) => (errors ?? []).map((e) => [e.instancePath, e.schemaPath, e.keyword, e.params, e.message])
  const expected = JSON.parse(JSON.stringify(values.flatMap((v) => [compiled.dag, compiled.featureView, compiled.config].map((f) => [f(v), brief(f.errors)])))) as unknown

  assert.deepEqual(outcomesInNewProcess(copy, valuesFile), expected)
  const written = statSync(codeFile)
  assert.ok(written.size > 10_000, 'the first load writes the code cache')
  assert.deepEqual(outcomesInNewProcess(copy, valuesFile), expected)
  assert.equal(statSync(codeFile).mtimeMs, written.mtimeMs, 'a code cache V8 accepts is not written again')

  writeFileSync(codeFile, 'not a code cache')
  assert.deepEqual(outcomesInNewProcess(copy, valuesFile), expected)
  assert.ok(statSync(codeFile).size > 10_000, 'a refused code cache is written again')
})
