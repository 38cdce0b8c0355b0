/**
 * A task that prints far more than the log cap, run by a real `cairn worker` process: what is
 * stored stays under workers.max_log_bytes, the line that says what was left out is there, the end
 * of the output can be read, and the worker's memory does not grow with the output (the program is
 * slowed to the pace of the database instead).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startTestEngine } from '../helpers/engine.ts'
import { waitFor } from '../helpers/engine-extra.ts'
import { readLogs, readLogsBefore } from '../../engine/store/logs.ts'

const MB = 1024 * 1024
const LINES = 600_000
// ~100 bytes a line: 60 MB of output.
const CHATTY = `dag: chatty
tasks:
  talk:
    operator: shell
    params:
      script: |
        echo "starting"
        awk 'BEGIN { pad = sprintf("%0088d", 0); for (i = 1; i <= ${LINES}; i++) print "line " i " " pad }'
        echo "the very end"
        exit 3
`

function procStatus(pid: number, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`)
  return Number(match[1]) * 1024
}

test('60 MB of output with a 5 MB cap: bounded storage, the marker, the tail, and bounded worker memory', async (t) => {
  const engine = await startTestEngine(t, { dags: { 'chatty.yaml': CHATTY, 'warm.yaml': 'dag: warm\ntasks:\n  hi: { operator: shell, params: { command: [echo, hi] } }\n' } })
  writeFileSync(join(engine.dir, 'cairn.yaml'), 'workers:\n  max_log_bytes: 5MB\n')
  const worker = engine.spawnWorker({ slots: 1 })
  await waitFor('the worker to start', async () => (await engine.db.query(`SELECT 1 FROM cairn.worker WHERE state = 'running'`)).rows.length > 0 || worker.exitCode !== null, 60_000)
  assert.equal(worker.exitCode, null, 'the worker accepted cairn.yaml')
  const pid = worker.pid!
  // One small task first: what a worker sets up on its first task (template threads, ...) is not what is measured.
  assert.equal(await engine.waitForRun(await engine.trigger('warm'), 60_000), 'success')
  // Start counting the peak from here: what the worker needs to run this task, not to start.
  writeFileSync(`/proc/${pid}/clear_refs`, '5')
  const before = procStatus(pid, 'VmRSS')

  const runId = await engine.trigger('chatty')
  assert.equal(await engine.waitForRun(runId, 240_000), 'failed')
  const peak = procStatus(pid, 'VmHWM')
  const growth = peak - before
  t.diagnostic(`worker RSS before ${(before / MB).toFixed(0)} MB, peak while running ${(peak / MB).toFixed(0)} MB (+${(growth / MB).toFixed(0)} MB)`)

  const at = { runId, taskId: 'talk', attempt: 1 }
  const { rows } = await engine.db.query<{ bytes: string; chunks: string; size: string }>(
    `SELECT sum(bytes) AS bytes, count(*) AS chunks, pg_total_relation_size('cairn.task_log_chunk') AS size FROM cairn.task_log_chunk WHERE run_id = $1`,
    [runId],
  )
  const stored = Number(rows[0]!.bytes)
  t.diagnostic(`stored ${(stored / MB).toFixed(2)} MB of lines in ${rows[0]!.chunks} rows; table and TOAST ${(Number(rows[0]!.size) / MB).toFixed(1)} MB`)
  assert.ok(stored <= 5 * MB + 128 * 1024, `stored ${stored} bytes`)
  assert.ok(stored >= 4 * MB, `stored only ${stored} bytes`)
  assert.ok(Number(rows[0]!.chunks) < 200, `${rows[0]!.chunks} rows`)

  // The head: the first lines as written.
  const head = await readLogs(engine.db, at, 0, 3)
  assert.deepEqual(head.map((l) => l.line.split(' ').slice(0, 2).join(' ')), ['running script', 'starting', 'line 1'])
  // The tail: the last lines, the exit message last.
  const tail = await readLogsBefore(engine.db, at, undefined, 4)
  assert.deepEqual(tail.lines.slice(1, 3).map((l) => l.line.split(' ').slice(0, 2).join(' ')), [`line ${LINES}`, 'the very'])
  assert.match(tail.lines.at(-1)!.line, /^failed \(exit_code/)
  assert.equal(tail.earlier, true)
  // Exactly one line says what was left out, and its counts add up.
  const { rows: view } = await engine.db.query<{ n: string }>('SELECT count(*) AS n FROM cairn.task_log WHERE run_id = $1', [runId])
  const all: { dropped?: { lines: number; bytes: number | null } }[] = []
  let after = 0
  for (;;) {
    const page = await readLogs(engine.db, at, after, 5000)
    all.push(...page)
    if (page.length < 5000) break
    after = page.at(-1)!.id
  }
  const markers = all.filter((l) => l.dropped)
  assert.equal(markers.length, 1)
  const totalLines = LINES + 4 // running script, starting, the very end, failed
  assert.equal(Number(view[0]!.n) + markers[0]!.dropped!.lines, totalLines)
  assert.ok(markers[0]!.dropped!.bytes! > 50 * MB, `dropped ${markers[0]!.dropped!.bytes} bytes`)

  // Memory: the worker did not hold the output. Measured here: +50 MB of garbage-collector slack;
  // before the writer had back-pressure, +270 MB for this task, growing with the output.
  assert.ok(growth < 128 * MB, `the worker grew by ${(growth / MB).toFixed(0)} MB while the task printed 60 MB`)
})
