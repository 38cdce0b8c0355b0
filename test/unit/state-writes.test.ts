/**
 * Only engine/store/transitions.ts writes the state of a task instance or a run (its SQL is where the
 * transition tables are applied); any other UPDATE that sets those columns would bypass them.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const ALLOWED = new Set(['engine/store/transitions.ts'])

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []))
}

/** `UPDATE cairn.task_instance|run [alias] SET ... state =` within one statement (up to its closing backtick or semicolon). */
const STATE_WRITE = /UPDATE\s+cairn\.(task_instance|run)\b[^`;]*?\bSET\b[^`;]*?(?<![\w.])(?:\w+\.)?state\s*=/gi

test('no code outside transitions.ts updates cairn.task_instance.state or cairn.run.state', () => {
  const offenders: string[] = []
  for (const root of ['engine', 'operators']) {
    for (const file of sources(join(ROOT, root))) {
      const name = relative(ROOT, file)
      if (ALLOWED.has(name)) continue
      for (const m of readFileSync(file, 'utf8').matchAll(STATE_WRITE)) offenders.push(`${name}: ${m[0].replace(/\s+/g, ' ').slice(0, 120)}`)
    }
  }
  assert.deepEqual(offenders, [])
})

test('the pattern finds the writes it is meant to find', () => {
  for (const sql of ["UPDATE cairn.run SET state = 'x'", 'UPDATE cairn.task_instance ti SET attempt = 1, state = $2', "UPDATE cairn.run r SET ended_at = now(), state = 'failed' WHERE"]) {
    assert.equal([...sql.matchAll(STATE_WRITE)].length, 1, sql)
  }
  for (const sql of ['UPDATE cairn.run SET throttled = true', "UPDATE cairn.attempt SET state = 'lost'", 'UPDATE cairn.run_queue SET state = 1']) {
    assert.equal([...sql.matchAll(STATE_WRITE)].length, 0, sql)
  }
})
