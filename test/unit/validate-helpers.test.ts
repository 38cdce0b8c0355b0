/**
 * validatePaths on helper threads (prestarted or not) gives exactly the diagnostics and file
 * summaries of validating on one thread, in the same order.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { validatePaths } from '../../engine/dag/validate-folder.ts'
import { prestartHelpers, releaseHelpers } from '../../engine/dag/helper-threads.ts'

const fixtures = new URL('../fixtures/dags/', import.meta.url).pathname

function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-validate-helpers-'))
  mkdirSync(join(dir, 'dags'))
  const texts = ['valid', 'invalid'].flatMap((kind) => readdirSync(join(fixtures, kind)).map((name) => readFileSync(join(fixtures, kind, name), 'utf8')))
  // Enough files that every thread takes several chunks; fixtures repeat under other DAG ids.
  for (let i = 0; i < 300; i++) {
    const text = texts[i % texts.length]!.replace(/^dag: (\S+)/m, `dag: $1_${i}`)
    writeFileSync(join(dir, 'dags', `f${String(i).padStart(3, '0')}.yaml`), text)
  }
  return dir
}

test('helper threads validate exactly as one thread does', async (t) => {
  const dir = folder()
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const alone = await validatePaths([join(dir, 'dags')], { cwd: dir, helpers: 0 })
  assert.ok(alone.diagnostics.length > 100, 'the fixtures bring their diagnostics')
  const shared = await validatePaths([join(dir, 'dags')], { cwd: dir, helpers: 2 })
  assert.deepEqual(shared, alone)
  // Prestarted helpers (as `cairn validate` starts them) are taken, and unused ones stopped.
  prestartHelpers()
  const prestarted = await validatePaths([join(dir, 'dags')], { cwd: dir, helpers: 1 })
  assert.deepEqual(prestarted, alone)
  prestartHelpers()
  releaseHelpers()
})
