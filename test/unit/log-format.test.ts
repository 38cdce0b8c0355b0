import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chooseLogFormat } from '../../engine/log.ts'

const LOG = new URL('../../engine/log.ts', import.meta.url).href
const MAIN = new URL('../../engine/cli/main.ts', import.meta.url).pathname

/** Logs two lines with a logger of the given options in a fresh process and returns its stderr. */
function logIn(options: string): string {
  const script = `
    import { createLogger } from ${JSON.stringify(LOG)}
    const log = createLogger(${options})
    log.info({ run_id: 'r1', task_id: 'extract' }, 'task started')
    log.warn('queue is deep')`
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  assert.equal(run.stdout, '')
  return run.stderr
}

test('a terminal gets pretty logs, anything else JSON, and --log-format decides when given', () => {
  assert.equal(chooseLogFormat(undefined, true), 'pretty')
  assert.equal(chooseLogFormat(undefined, false), 'json')
  assert.equal(chooseLogFormat('json', true), 'json')
  assert.equal(chooseLogFormat('pretty', false), 'pretty')
})

test('pretty lines carry time, level, message and the key fields, one line per entry', () => {
  const lines = logIn("{ format: 'pretty' }").trimEnd().split('\n')
  assert.equal(lines.length, 2, lines.join('\n'))
  assert.match(lines[0]!, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO: task started \{"run_id":"r1","task_id":"extract"\}$/)
  assert.match(lines[1]!, /^\[[^\]]+\] WARN: queue is deep$/)
  assert.doesNotMatch(lines.join('\n'), /\u001b\[/, 'no colour codes unless asked for')
  assert.match(logIn("{ format: 'pretty', colorize: true }"), /\u001b\[/)
})

test('json lines stay pino objects (the default when not on a terminal)', () => {
  for (const options of ["{ format: 'json' }", '{}']) {
    const entries = logIn(options).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.equal(entries.length, 2)
    assert.equal(entries[0]!.msg, 'task started')
    assert.equal(entries[0]!.level, 30)
    assert.equal(entries[0]!.run_id, 'r1')
    assert.match(String(entries[0]!.time), /^\d{4}-\d\d-\d\dT/)
  }
})

test('--log-format takes pretty or json only (exit 2 before anything starts)', () => {
  for (const command of ['up', 'scheduler', 'worker', 'web']) {
    const run = spawnSync(process.execPath, [MAIN, command, '--log-format', 'xml'], { encoding: 'utf8', env: { ...process.env, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' } })
    assert.equal(run.status, 2, `${command}: ${run.stderr}`)
    assert.match(run.stderr, /--log-format must be one of pretty, json, not "xml"/)
  }
})
