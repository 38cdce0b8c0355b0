/**
 * The log writer and readers against a real database: chunks, the cap (head kept, rolling tail), the
 * "left out" line seen exactly once whichever way a reader pages, an attempt taken up again, and the
 * migration of line-per-row logs into chunks.
 */
import { before, after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { loadMigrations, migrate } from '../../engine/store/migrate.ts'
import { readLogs, readLogsBefore } from '../../engine/store/logs.ts'
import type { LogLine } from '../../engine/store/logs.ts'
import { openLogWriter } from '../../engine/worker/log-writer.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'

const log = testLogger()
const db: Db = createDb(await createTestDatabase(), { log, max: 4 })

before(() => migrate(db, log))
after(() => db.close())

let runCounter = 0
const newAttempt = () => ({ runId: `run_${++runCounter}`, taskId: 't', attempt: 1 })

async function writeLines(at: { runId: string; taskId: string; attempt: number }, count: number, maxBytes: number, make = (i: number) => `line ${i} ${'x'.repeat(90)}`, target: Db = db): Promise<void> {
  const writer = openLogWriter(target, at, { maxBytes, log })
  for (let i = 1; i <= count; i++) {
    const wait = writer.write(i % 7 === 0 ? 'stderr' : 'stdout', make(i))
    if (wait) await wait
  }
  await writer.close()
}

async function storedBytes(runId: string): Promise<number> {
  const { rows } = await db.query<{ bytes: string | null; rows: string }>('SELECT sum(bytes) AS bytes, count(*) AS rows FROM cairn.task_log_chunk WHERE run_id = $1', [runId])
  return Number(rows[0]!.bytes ?? 0)
}

async function allForwards(at: { runId: string; taskId: string; attempt: number }, page: number): Promise<LogLine[]> {
  const out: LogLine[] = []
  let after = 0
  for (;;) {
    const lines = await readLogs(db, at, after, page)
    out.push(...lines)
    if (lines.length < page) return out
    after = lines.at(-1)!.id
  }
}

async function allBackwards(at: { runId: string; taskId: string; attempt: number }, page: number): Promise<LogLine[]> {
  const out: LogLine[] = []
  let before: number | undefined
  for (;;) {
    const { lines, earlier } = await readLogsBefore(db, at, before, page)
    out.unshift(...lines)
    if (!earlier) return out
    before = lines[0]!.id
  }
}

test('a small log is stored whole, in few rows, and read back in order with ids from 1', async () => {
  const at = newAttempt()
  await writeLines(at, 1000, 50 * 1024 * 1024)
  const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM cairn.task_log_chunk WHERE run_id = $1', [at.runId])
  assert.ok(Number(rows[0]!.n) <= 4, `${rows[0]!.n} rows for 1000 lines`)
  const lines = await readLogs(db, at, 0, 5000)
  assert.deepEqual(lines.map((l) => l.id), Array.from({ length: 1000 }, (_, i) => i + 1))
  assert.equal(lines[6]!.stream, 'stderr')
  assert.equal(lines[0]!.stream, 'stdout')
  assert.match(lines[999]!.line, /^line 1000 x+$/)
  assert.ok(lines.every((l) => l.dropped === undefined))
  // The view gives the same lines one per row.
  const { rows: view } = await db.query<{ id: string; stream: string; line: string }>('SELECT id, stream, line FROM cairn.task_log WHERE run_id = $1 ORDER BY id', [at.runId])
  assert.deepEqual(view.map((r) => [Number(r.id), r.stream, r.line]), lines.map((l) => [l.id, l.stream, l.line]))
  // Empty lines survive.
  const empty = newAttempt()
  await writeLines(empty, 3, 1024 * 1024, (i) => (i === 2 ? 'x' : ''))
  assert.deepEqual((await readLogs(db, empty, 0, 10)).map((l) => l.line), ['', 'x', ''])
})

test('over the cap: the first half and the latest lines are kept, with one line saying what was left out', async () => {
  const at = newAttempt()
  const cap = 256 * 1024
  const count = 20_000 // ~2 MB of ~100-byte lines
  await writeLines(at, count, cap)
  const stored = await storedBytes(at.runId)
  assert.ok(stored <= cap + 64 * 1024, `stored ${stored} bytes with a cap of ${cap}`)
  assert.ok(stored >= cap * 0.75, `stored only ${stored} bytes of a ${cap} cap`)

  const forwards = await allForwards(at, 500)
  const markers = forwards.filter((l) => l.dropped)
  assert.equal(markers.length, 1, 'one line stands for the gap')
  const marker = markers[0]!
  assert.match(marker.line, /lines \([0-9.]+ (KiB|MiB)\) left out here/)
  const kept = forwards.filter((l) => !l.dropped)
  assert.equal(kept[0]!.id, 1)
  assert.equal(kept.at(-1)!.id, count)
  assert.match(kept.at(-1)!.line, new RegExp(`^line ${count} `))
  // The marker counts exactly the missing lines and bytes.
  assert.equal(kept.length + marker.dropped!.lines, count)
  const totalBytes = Array.from({ length: count }, (_, i) => Buffer.byteLength(`line ${i + 1} ${'x'.repeat(90)}`) + 1).reduce((a, b) => a + b, 0)
  assert.equal(marker.dropped!.bytes, totalBytes - kept.reduce((sum, l) => sum + Buffer.byteLength(l.line) + 1, 0))
  // Ids increase; the marker's id is the last missing line.
  assert.deepEqual(forwards.map((l) => l.id), [...forwards.map((l) => l.id)].sort((a, b) => a - b))
  const index = forwards.indexOf(marker)
  assert.equal(forwards[index + 1]!.id, marker.id + 1)
  assert.equal(forwards[index - 1]!.id, marker.id - marker.dropped!.lines)

  // Paging backwards from the tail sees exactly the same sequence, the marker once, whatever the page size.
  for (const page of [13, 1000, 5000]) {
    const backwards = await allBackwards(at, page)
    assert.deepEqual(backwards.map((l) => [l.id, l.line]), forwards.map((l) => [l.id, l.line]), `page ${page}`)
  }
  // Forward paging with tiny pages too.
  assert.deepEqual((await allForwards(at, 37)).map((l) => l.id), forwards.map((l) => l.id))

  // The tail alone: the last lines, and "earlier" set.
  const tail = await readLogsBefore(db, at, undefined, 5)
  assert.deepEqual(tail.lines.map((l) => l.id), [count - 4, count - 3, count - 2, count - 1, count])
  assert.equal(tail.earlier, true)
})

test('an attempt taken up again carries on numbering after its stored lines', async () => {
  const at = newAttempt()
  await writeLines(at, 10, 1024 * 1024)
  await writeLines(at, 5, 1024 * 1024, (i) => `again ${i}`)
  const lines = await readLogs(db, at, 0, 100)
  assert.deepEqual(lines.map((l) => l.id), Array.from({ length: 15 }, (_, i) => i + 1))
  assert.deepEqual(lines.slice(10).map((l) => l.line), ['again 1', 'again 2', 'again 3', 'again 4', 'again 5'])
})

test('a reader that falls behind the rolling window is told how many lines it missed', async () => {
  const at = newAttempt()
  const cap = 64 * 1024
  await writeLines(at, 5000, cap)
  const seen = await readLogs(db, at, 0, 100_000)
  const lastSeen = seen.at(-1)!.id
  assert.equal(lastSeen, 5000)
  // Much more output: the window moves past what the reader had.
  await writeLines(at, 5000, cap)
  const next = await readLogs(db, at, lastSeen, 100_000)
  assert.ok(next[0]!.dropped, `first line after ${lastSeen}: ${JSON.stringify(next[0])}`)
  assert.equal(next[0]!.id, next[1]!.id - 1)
  assert.equal(next.filter((l) => l.dropped).length, 1)
})

test('the migration turns line-per-row logs into chunks holding the same lines, numbered per attempt', async (t) => {
  const old = createDb(await createTestDatabase(t), { log, max: 2 })
  t.after(() => old.close())
  const dir = mkdtempSync(join(tmpdir(), 'cairn-migrations-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const m of await loadMigrations()) if (m.version < 8) writeFileSync(join(dir, m.name), m.sql)
  await migrate(old, log, { dir })
  const streams = ['stdout', 'stderr', 'log']
  const lines = Array.from({ length: 1200 }, (_, i) => (i % 100 === 0 ? '' : `old ${i + 1} ünï`))
  const at0 = Date.parse('2026-03-01T00:00:00.000Z')
  // Two attempts written interleaved, as concurrent writers would.
  for (let i = 0; i < lines.length; i++) {
    await old.query('INSERT INTO cairn.task_log (run_id, task_id, attempt, stream, line, at) VALUES ($1, $2, $3, $4, $5, $6)', ['r', 't', 1, streams[i % 3], lines[i], new Date(at0 + i)])
    if (i < 3) await old.query('INSERT INTO cairn.task_log (run_id, task_id, attempt, stream, line, at) VALUES ($1, $2, $3, $4, $5, $6)', ['r', 't', 2, 'stdout', `second ${i + 1}`, new Date(at0)])
  }
  await migrate(old, log)

  const first = await readLogs(old, { runId: 'r', taskId: 't', attempt: 1 }, 0, 5000)
  assert.deepEqual(first.map((l) => l.id), Array.from({ length: 1200 }, (_, i) => i + 1))
  assert.deepEqual(first.map((l) => l.line), lines)
  assert.deepEqual(first.map((l) => l.stream), lines.map((_, i) => streams[i % 3]))
  assert.deepEqual(first.map((l) => l.at.getTime()), lines.map((_, i) => at0 + i))
  assert.deepEqual((await readLogs(old, { runId: 'r', taskId: 't', attempt: 2 }, 0, 10)).map((l) => l.line), ['second 1', 'second 2', 'second 3'])
  const { rows } = await old.query<{ first_line: string; first_byte: string; bytes: number }>(
    `SELECT first_line, first_byte, bytes FROM cairn.task_log_chunk WHERE attempt = 1 ORDER BY first_line`,
  )
  assert.deepEqual(rows.map((r) => Number(r.first_line)), [1, 501, 1001])
  // Byte offsets run on from chunk to chunk.
  assert.equal(Number(rows[1]!.first_byte), Number(rows[0]!.first_byte) + rows[0]!.bytes)
  assert.equal(Number(rows[0]!.first_byte), 0)
  // A writer taking the attempt up again carries on after line 1200.
  await writeLines({ runId: 'r', taskId: 't', attempt: 1 }, 1, 1024 * 1024, () => 'new', old)
  assert.deepEqual((await readLogsBefore(old, { runId: 'r', taskId: 't', attempt: 1 }, undefined, 1)).lines.map((l) => [l.id, l.line]), [[1201, 'new']])
})
