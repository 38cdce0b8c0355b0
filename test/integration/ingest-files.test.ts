/**
 * The ingest operator on real files and a real database: types declared and inferred, bad lines
 * named with their line numbers (fail) or kept with them (quarantine, max_bad_rows), missing
 * columns, expectations, the three modes (an interval re-run giving identical rows), and the
 * allowed folders (`..` and a symbolic link leading out are refused).
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, existsSync, readdirSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { join } from 'node:path'
import { ingestHarness } from '../helpers/ingest.ts'
import type { IngestHarness } from '../helpers/ingest.ts'
import { openDuckDb, parquetScan, sqlString } from '../../engine/data/duckdb.ts'
import { clearRun } from '../../engine/store/control.ts'

async function rowsOf(h: IngestHarness, reference: string, order = ''): Promise<Record<string, unknown>[]> {
  const version = await h.datasets.resolve(reference)
  assert.ok(version, `${reference} exists`)
  const duck = await openDuckDb({ threads: 1 })
  try {
    return await duck.rows(`SELECT * FROM ${parquetScan(version.files)} ${order}`)
  } finally {
    duck.close()
  }
}

async function versionCount(h: IngestHarness): Promise<number> {
  const { rows } = await h.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM cairn.dataset_version`)
  return Number(rows[0]!.n)
}

function failed(result: { ok: boolean }): asserts result is { ok: false; kind: string; retryable: boolean; message: string } {
  assert.equal(result.ok, false, `expected a failure, got ${JSON.stringify(result)}`)
}

test('csv: declared and inferred types, UTC timestamps, outputs and the inference in the log', async (t) => {
  const h = await ingestHarness(t)
  mkdirSync(join(h.dagsFolder, 'data'))
  writeFileSync(join(h.dagsFolder, 'data', 'events-1.csv'), 'event_id,user_id,ts,amount,ok,day\n1,u1,2026-01-01T00:00:00,1.5,true,2026-01-01\n2,u2,2026-01-01T03:00:00+02:00,2,false,2026-01-02\n')
  writeFileSync(join(h.dagsFolder, 'data', 'events-2.csv'), 'event_id,user_id,ts,amount,ok,day\n3,u3,2026-01-02 10:00:00Z,,true,2026-01-03\n')
  const { result, log } = await h.run({
    source: { kind: 'csv', path: 'data/events-*.csv' },
    dataset: 'events',
    columns: { user_id: { type: 'string', nullable: false }, ts: { type: 'timestamp' }, amount: { type: 'number' } },
  })
  assert.deepEqual(result, { ok: true, outputs: { dataset: 'events', version: 1, rows: 3 } })
  const version = (await h.datasets.get('events'))!
  assert.deepEqual(version.columns, [
    { name: 'event_id', type: 'integer' }, { name: 'user_id', type: 'string' }, { name: 'ts', type: 'timestamp' },
    { name: 'amount', type: 'number' }, { name: 'ok', type: 'boolean' }, { name: 'day', type: 'date' },
  ])
  const rows = await rowsOf(h, 'events', 'ORDER BY event_id')
  assert.deepEqual(rows.map((r) => r.ts), ['2026-01-01 00:00:00+00', '2026-01-01 01:00:00+00', '2026-01-02 10:00:00+00'])
  assert.deepEqual(rows.map((r) => r.amount), [1.5, 2, null])
  assert.match(log.join('\n'), /inferred types of undeclared columns: event_id: integer, ok: boolean, day: date/)
  assert.deepEqual(version.inputs, [])
  assert.deepEqual((version.details.source as { files: string[] }).files, ['data/events-1.csv', 'data/events-2.csv'])
})

test('csv: malformed lines and wrong types fail naming file:line, and nothing is published', async (t) => {
  const h = await ingestHarness(t)
  writeFileSync(join(h.dagsFolder, 'bad.csv'), [
    'id,name,amount,ts',
    '1,a,1.5,2026-01-01T00:00:00',
    '',
    '2,b,x,2026-01-01T01:00:00',
    '3,"multi',
    'line",3,2026-01-02',
    '4,d,4,not-a-time',
    '5,e,5',
    '6,f,1.5,2026-01-01,extra',
    '7,g,7,2026-01-03',
    '8,,8,2026-01-03',
    '',
  ].join('\n'))
  const params = { source: { kind: 'csv', path: 'bad.csv' }, dataset: 'bad', columns: { id: { type: 'integer' }, name: { type: 'string', nullable: false }, amount: { type: 'number' }, ts: { type: 'timestamp' } } }
  const { result } = await h.run(params)
  failed(result)
  assert.equal(result.kind, 'data_invalid')
  assert.equal(result.retryable, false)
  assert.match(result.message, /^5 bad rows, nothing was published/)
  assert.match(result.message, /bad\.csv:4: column amount: .*"x"/)
  assert.match(result.message, /bad\.csv:7: column ts: "not-a-time" is not an ISO-8601 timestamp/)
  assert.match(result.message, /bad\.csv:8: expected 4 fields, found 3/)
  assert.match(result.message, /bad\.csv:9: expected 4 fields, found 5/)
  assert.match(result.message, /bad\.csv:11: column name is empty but declared nullable: false/)
  assert.equal(await versionCount(h), 0)
  assert.deepEqual(existsSync(h.settings.dir) ? readdirSync(h.settings.dir).flatMap((d) => readdirSync(join(h.settings.dir, d))) : [], [], 'no staged folder is left')

  // Quarantine with room for them: the good rows are published, the bad ones kept with lines and text.
  const kept = await h.run({ ...params, on_bad_rows: 'quarantine', max_bad_rows: 5 })
  assert.deepEqual(kept.result, { ok: true, outputs: { dataset: 'bad', version: 1, rows: 3, bad_rows: 5 } })
  assert.deepEqual((await rowsOf(h, 'bad', 'ORDER BY id')).map((r) => [r.id, r.name]), [['1', 'a'], ['3', 'multi\nline'], ['7', 'g']])
  const version = (await h.datasets.get('bad'))!
  assert.equal(version.badRows!.count, 5)
  const duck = await openDuckDb({ threads: 1 })
  const bad = await duck.rows<{ line: string; reason: string; raw: string }>(`SELECT b.line::VARCHAR AS line, b.reason, b.raw FROM read_parquet(${sqlString(join(h.settings.dir, version.badRows!.location!))}) b ORDER BY b.line`)
  duck.close()
  assert.deepEqual(bad.map((b) => Number(b.line)), [4, 7, 8, 9, 11])
  assert.deepEqual(bad.map((b) => b.raw), ['2,b,x,2026-01-01T01:00:00', '4,d,4,not-a-time', '5,e,5', '6,f,1.5,2026-01-01,extra', '8,,8,2026-01-03'])
  assert.match(kept.log.join('\n'), /quarantined 5 bad rows/)

  // One more than max_bad_rows: fails, publishes nothing.
  const over = await h.run({ ...params, on_bad_rows: 'quarantine', max_bad_rows: 4 })
  failed(over.result)
  assert.match(over.result.message, /5 bad rows, more than max_bad_rows \(4\)/)
  assert.equal(await versionCount(h), 1)
  // max_bad_rows: 0 written out allows none; quarantine without max_bad_rows sets every bad row aside.
  const none = await h.run({ ...params, on_bad_rows: 'quarantine', max_bad_rows: 0 })
  failed(none.result)
  assert.match(none.result.message, /5 bad rows, more than max_bad_rows \(0\)/)
  assert.equal(await versionCount(h), 1)
  const unbounded = await h.run({ ...params, on_bad_rows: 'quarantine' })
  assert.deepEqual(unbounded.result, { ok: true, outputs: { dataset: 'bad', version: 2, rows: 6, bad_rows: 5 } })
  assert.equal((await h.datasets.get('bad'))!.badRows!.count, 5)
})

test('csv: an integer column refuses "1.5" and a bad line deep in a big file is located exactly', async (t) => {
  const h = await ingestHarness(t)
  const lines = ['id,v']
  for (let i = 1; i <= 200_000; i++) lines.push(i === 150_000 ? `${i},1.5` : `${i},${i}`)
  writeFileSync(join(h.dagsFolder, 'big.csv'), lines.join('\n') + '\n')
  const { result } = await h.run({ source: { kind: 'csv', path: 'big.csv' }, dataset: 'big', columns: { v: { type: 'integer' } } })
  failed(result)
  assert.match(result.message, /^1 bad row, .*big\.csv:150001: column v: "1\.5" is not an integer/)
})

test('csv: missing declared columns are named', async (t) => {
  const h = await ingestHarness(t)
  writeFileSync(join(h.dagsFolder, 'a.csv'), 'id,name\n1,a\n')
  const { result } = await h.run({ source: { kind: 'csv', path: 'a.csv' }, dataset: 'a', columns: { amount: { type: 'number' }, ts: { type: 'timestamp' }, id: { type: 'integer' } } })
  failed(result)
  assert.equal(result.kind, 'data_invalid')
  assert.match(result.message, /a\.csv has no columns amount, ts \(declared in columns\); its columns are: id, name/)
})

test('jsonl: malformed JSON, non-objects and wrong types by line; inferred types', async (t) => {
  const h = await ingestHarness(t)
  writeFileSync(join(h.dagsFolder, 'e.jsonl'), [
    '{"id": 1, "ts": "2026-01-01T00:00:00", "amount": 1.5, "tags": ["a"], "day": "2026-01-01"}',
    '',
    '{"id": 2, "ts": "2026-01-01T01:00:00+02:00", "amount": true, "day": "2026-01-02"}',
    '{bad json',
    '[1, 2]',
    '{"id": 3, "ts": "2026-01-02T00:00:00Z", "amount": 3, "day": "2026-01-03"}',
    '',
  ].join('\n'))
  const params = { source: { kind: 'jsonl', path: 'e.jsonl' }, dataset: 'e', columns: { amount: { type: 'number' } } }
  const { result } = await h.run(params)
  failed(result)
  assert.match(result.message, /^3 bad rows/)
  assert.match(result.message, /e\.jsonl:3: column amount: "true" is not a number/)
  assert.match(result.message, /e\.jsonl:4: not valid JSON/)
  assert.match(result.message, /e\.jsonl:5: not a JSON object/)
  const kept = await h.run({ ...params, on_bad_rows: 'quarantine', max_bad_rows: 3 })
  assert.equal(kept.result.ok, true)
  const version = (await h.datasets.get('e'))!
  assert.deepEqual(version.columns, [{ name: 'id', type: 'integer' }, { name: 'ts', type: 'timestamp' }, { name: 'amount', type: 'number' }, { name: 'tags', type: 'string' }, { name: 'day', type: 'date' }])
  assert.deepEqual((await rowsOf(h, 'e', 'ORDER BY id')).map((r) => [r.id, r.ts, r.tags]), [['1', '2026-01-01 00:00:00+00', '["a"]'], ['3', '2026-01-02 00:00:00+00', null]])
  assert.deepEqual((version.badRows!.sample as Array<{ line: number }>).map((b) => b.line), [3, 4, 5])
})

test('parquet: native types kept, declared conversions checked by row', async (t) => {
  const h = await ingestHarness(t)
  const duck = await openDuckDb({ threads: 1 })
  await duck.run(`COPY (SELECT i AS id, CASE WHEN i = 3 THEN 'x' ELSE i::VARCHAR END AS code, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (i) HOUR AS ts FROM range(5) t(i)) TO ${sqlString(join(h.dagsFolder, 'p.parquet'))} (FORMAT parquet)`)
  duck.close()
  const { result } = await h.run({ source: { kind: 'parquet', path: 'p.parquet' }, dataset: 'p', columns: { code: { type: 'integer' } } })
  failed(result)
  assert.match(result.message, /p\.parquet row 4: column code: "x" is not an integer/)
  const ok = await h.run({ source: { kind: 'parquet', path: 'p.parquet' }, dataset: 'p' })
  assert.deepEqual(ok.result, { ok: true, outputs: { dataset: 'p', version: 1, rows: 5 } })
  assert.deepEqual((await h.datasets.get('p'))!.columns, [{ name: 'id', type: 'integer' }, { name: 'code', type: 'string' }, { name: 'ts', type: 'timestamp' }])
})

test('expectations: each one reported with its observed figure; a failure publishes nothing', async (t) => {
  const h = await ingestHarness(t)
  writeFileSync(join(h.dagsFolder, 'x.csv'), 'id,user_id,amount,country\n1,u1,5,DE\n2,,7,FR\n2,u3,-1,US\n')
  const base = { source: { kind: 'csv', path: 'x.csv' }, dataset: 'x' }
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ min_rows: 4 }, /min_rows: expected 4, observed 3/],
    [{ max_rows: 2 }, /max_rows: expected 2, observed 3/],
    [{ not_null: ['user_id'] }, /not_null user_id: expected 0, observed \{"nulls":1\}/],
    [{ unique: ['id'] }, /unique id: expected 0, observed \{"duplicated_keys":1,"example":\{"id":2\}\}/],
    [{ ranges: { amount: { min: 0, max: 6 } } }, /range amount: expected \{"min":0,"max":6\}, observed \{"min":-1,"max":7,"outside":2\}/],
    [{ values: { country: ['DE', 'FR'] } }, /values country: expected \["DE","FR"\], observed \{"outside":1,"unexpected":\["US"\]\}/],
  ]
  for (const [expect, message] of cases) {
    const { result, log } = await h.run({ ...base, expect })
    failed(result)
    assert.equal(result.kind, 'data_invalid', JSON.stringify(expect))
    assert.equal(result.retryable, false)
    assert.match(result.message, message)
    assert.match(log.join('\n'), /expectation FAILED/)
  }
  assert.equal(await versionCount(h), 0)
  const unknown = await h.run({ ...base, expect: { not_null: ['nope'] } })
  failed(unknown.result)
  assert.equal(unknown.result.kind, 'invalid_params')
  const passing = await h.run({ ...base, expect: { min_rows: 3, max_rows: 3, unique: ['id', 'user_id'], ranges: { amount: { min: -1 } }, values: { country: ['DE', 'FR', 'US'] } } })
  assert.equal(passing.result.ok, true)
  const report = (await h.datasets.get('x'))!.expectations as Array<{ expectation: string; passed: boolean; observed: unknown }>
  assert.deepEqual(report.map((e) => [e.expectation, e.passed]), [['min_rows', true], ['max_rows', true], ['unique', true], ['range', true], ['values', true]])
})

test('modes: append adds, replace starts over, interval replaces its interval and a re-run gives identical rows', async (t) => {
  const h = await ingestHarness(t)
  const csv = (name: string, rows: string[]) => writeFileSync(join(h.dagsFolder, name), ['id,ts,v', ...rows].join('\n') + '\n')
  csv('a.csv', ['1,2026-01-01T10:00:00Z,1', '2,2026-01-02T10:00:00Z,2'])
  const cols = { ts: { type: 'timestamp' } }
  assert.equal((await h.run({ source: { kind: 'csv', path: 'a.csv' }, dataset: 'm', columns: cols })).result.ok, true)
  csv('b.csv', ['3,2026-01-03T10:00:00Z,3'])
  const appended = await h.run({ source: { kind: 'csv', path: 'b.csv' }, dataset: 'm', columns: cols, mode: 'append' })
  assert.deepEqual(appended.result, { ok: true, outputs: { dataset: 'm', version: 2, rows: 3 } })
  assert.deepEqual((await h.datasets.get('m'))!.inputs, [{ dataset: 'm', version: 1 }])
  assert.deepEqual((await rowsOf(h, 'm')).map((r) => r.id), ['1', '2', '3'])

  // Interval [Jan 2, Jan 3): the old row of Jan 2 goes, the new rows of Jan 2 come; rows of other days in the file are left out.
  csv('c.csv', ['22,2026-01-02T12:00:00Z,22', '21,2026-01-02T01:00:00Z,21', '99,2026-01-05T00:00:00Z,99'])
  const day2 = { start: new Date('2026-01-02T00:00:00Z'), end: new Date('2026-01-03T00:00:00Z') }
  const first = await h.run({ source: { kind: 'csv', path: 'c.csv' }, dataset: 'm', columns: cols, mode: 'interval', time_column: 'ts' }, { interval: day2 })
  assert.deepEqual(first.result, { ok: true, outputs: { dataset: 'm', version: 3, rows: 4 } })
  assert.match(first.log.join('\n'), /1 row outside the data interval \[2026-01-02T00:00:00.000Z, 2026-01-03T00:00:00.000Z\) by ts left out/)
  const v3 = await rowsOf(h, 'm@3')
  assert.deepEqual(v3.map((r) => r.id), ['1', '21', '22', '3'])
  const again = await h.run({ source: { kind: 'csv', path: 'c.csv' }, dataset: 'm', columns: cols, mode: 'interval', time_column: 'ts' }, { interval: day2 })
  assert.deepEqual(again.result, { ok: true, outputs: { dataset: 'm', version: 4, rows: 4 } })
  assert.deepEqual(await rowsOf(h, 'm@4'), v3, 'identical rows in an identical order')
  assert.equal((await h.datasets.get('m', 4))!.fingerprint, (await h.datasets.get('m', 3))!.fingerprint)

  // A manual run has no interval.
  const manual = await h.run({ source: { kind: 'csv', path: 'c.csv' }, dataset: 'm', columns: cols, mode: 'interval', time_column: 'ts' })
  failed(manual.result)
  assert.equal(manual.result.kind, 'invalid_params')
  assert.match(manual.result.message, /this run has none .*a manual run/)

  const replaced = await h.run({ source: { kind: 'csv', path: 'b.csv' }, dataset: 'm', columns: cols, mode: 'replace' })
  assert.deepEqual(replaced.result, { ok: true, outputs: { dataset: 'm', version: 5, rows: 1 } })
  // Other columns cannot be appended.
  writeFileSync(join(h.dagsFolder, 'other.csv'), 'name\nx\n')
  const mismatch = await h.run({ source: { kind: 'csv', path: 'other.csv' }, dataset: 'm' })
  failed(mismatch.result)
  assert.match(mismatch.result.message, /version 5 of dataset m has the columns \(id integer, ts timestamp, v integer\), these rows have \(name string\)/)
})

test('append retried by the same task instance after its publish: the rows are not appended twice', async (t) => {
  const h = await ingestHarness(t)
  writeFileSync(join(h.dagsFolder, 'a.csv'), 'id\n1\n2\n')
  assert.equal((await h.run({ source: { kind: 'csv', path: 'a.csv' }, dataset: 'r' })).result.ok, true)
  writeFileSync(join(h.dagsFolder, 'b.csv'), 'id\n3\n')
  const first = await h.run({ source: { kind: 'csv', path: 'b.csv' }, dataset: 'r' }, { taskInstance: { runId: 'run-append', taskId: 'load' } })
  assert.deepEqual(first.result, { ok: true, outputs: { dataset: 'r', version: 2, rows: 3 } })
  const retry = await h.run({ source: { kind: 'csv', path: 'b.csv' }, dataset: 'r' }, { taskInstance: { runId: 'run-append', taskId: 'load' } })
  assert.deepEqual(retry.result, { ok: true, outputs: { dataset: 'r', version: 2, rows: 3 } })
  assert.match(retry.log.join('\n'), /already published by an earlier attempt/)
})

test('a cleared task instance that runs again publishes a new version, also when its rows are the same', async (t) => {
  // SPEC 7: every successful ingest publishes a version; re-running an interval yields identical rows
  // (in a new version). Only a retry of the same try (a publish whose report was lost) reuses its version.
  const h = await ingestHarness(t)
  writeFileSync(join(h.dagsFolder, 'day.csv'), 'id,ts\n1,2026-01-01T10:00:00Z\n2,2026-01-02T10:00:00Z\n')
  const day1 = { start: new Date('2026-01-01T00:00:00Z'), end: new Date('2026-01-02T00:00:00Z') }
  const params = { source: { kind: 'csv', path: 'day.csv' }, dataset: 'days', mode: 'interval', time_column: 'ts' }
  const taskInstance = { runId: 'run-day1', taskId: 'load' }
  const clear = async () => {
    await h.db.query(`UPDATE cairn.run SET state = 'failed' WHERE run_id = $1`, [taskInstance.runId])
    await h.db.query(`UPDATE cairn.task_instance SET state = 'failed' WHERE run_id = $1`, [taskInstance.runId])
    assert.deepEqual(await clearRun(h.db, taskInstance.runId), { ok: true, cleared: ['load'] })
  }
  const first = await h.run(params, { interval: day1, taskInstance })
  assert.deepEqual(first.result, { ok: true, outputs: { dataset: 'days', version: 1, rows: 1 } })
  await clear()
  const again = await h.run(params, { interval: day1, taskInstance })
  assert.deepEqual(again.result, { ok: true, outputs: { dataset: 'days', version: 2, rows: 1 } })
  assert.deepEqual(await rowsOf(h, 'days@2'), await rowsOf(h, 'days@1'))
  // A retry without a clear in between (the report of the publish was lost) keeps the version.
  const retry = await h.run(params, { interval: day1, taskInstance })
  assert.deepEqual(retry.result, { ok: true, outputs: { dataset: 'days', version: 2, rows: 1 } })

  // replace: a cleared older run's load becomes the latest version again, not the old number.
  const replace = { source: { kind: 'csv', path: 'day.csv' }, dataset: 'snap', mode: 'replace' }
  const older = { runId: 'run-older', taskId: 'load' }
  assert.equal((await h.run(replace, { taskInstance: older })).result.ok, true)
  writeFileSync(join(h.dagsFolder, 'other.csv'), 'id,ts\n3,2026-01-03T10:00:00Z\n')
  assert.equal((await h.run({ ...replace, source: { kind: 'csv', path: 'other.csv' } })).result.ok, true)
  await h.db.query(`UPDATE cairn.run SET state = 'failed' WHERE run_id = $1`, [older.runId])
  await h.db.query(`UPDATE cairn.task_instance SET state = 'failed' WHERE run_id = $1`, [older.runId])
  assert.deepEqual(await clearRun(h.db, older.runId), { ok: true, cleared: ['load'] })
  const rerun = await h.run(replace, { taskInstance: older })
  assert.deepEqual(rerun.result, { ok: true, outputs: { dataset: 'snap', version: 3, rows: 2 } })
})

test('allowed paths: .., an absolute path and a symbolic link leading out are refused without retry', async (t) => {
  const h = await ingestHarness(t, { data: { allowed_paths: ['shared'] } })
  const outside = join(h.dir, 'outside')
  mkdirSync(outside)
  writeFileSync(join(outside, 'secret.csv'), 'id\n1\n')
  mkdirSync(join(h.dir, 'shared'))
  writeFileSync(join(h.dir, 'shared', 'ok.csv'), 'id\n1\n')
  symlinkSync(join(outside, 'secret.csv'), join(h.dagsFolder, 'link.csv'))
  symlinkSync(outside, join(h.dagsFolder, 'linkdir'))
  for (const path of ['../outside/secret.csv', join(outside, 'secret.csv'), 'link.csv', 'linkdir/*.csv', '../outside/*.csv']) {
    const { result } = await h.run({ source: { kind: 'csv', path }, dataset: 'leak' })
    failed(result)
    assert.equal(result.kind, 'invalid_params', path)
    assert.equal(result.retryable, false)
    assert.match(result.message, /is outside the folders file sources may read/, path)
  }
  assert.equal(await versionCount(h), 0)
  const allowed = await h.run({ source: { kind: 'csv', path: '../shared/ok.csv' }, dataset: 'fine' })
  assert.equal(allowed.result.ok, true)
  const none = await h.run({ source: { kind: 'csv', path: 'nothing-*.csv' }, dataset: 'fine' })
  failed(none.result)
  assert.match(none.result.message, /no file matches/)
  assert.equal(existsSync(join(h.dir, 'work')), true)
})

test('a cancel stops DuckDB mid-read: the attempt reports cancelled and publishes nothing', async (t) => {
  const h = await ingestHarness(t)
  const duck = await openDuckDb({})
  await duck.run(`COPY (SELECT i AS id, md5(i::VARCHAR) AS h, i / 3.0 AS x FROM range(3000000) t(i)) TO ${sqlString(join(h.dagsFolder, 'huge.csv'))} (HEADER)`)
  duck.close()
  const controller = new AbortController()
  const started = Date.now()
  const timer = setTimeout(() => controller.abort(), 300)
  const { result } = await h.run({ source: { kind: 'csv', path: 'huge.csv' }, dataset: 'huge', columns: { id: { type: 'integer' } } }, { signal: controller.signal })
  clearTimeout(timer)
  failed(result)
  assert.equal(result.kind, 'cancelled')
  assert.ok(Date.now() - started < 20_000)
  assert.equal(await versionCount(h), 0)
})

test('the example churn_data DAG: its two ingest tasks load the data shipped in dags/data', async (t) => {
  const h = await ingestHarness(t)
  cpSync(new URL('../../dags/data', import.meta.url).pathname, join(h.dagsFolder, 'data'), { recursive: true })
  const dag = parseYaml(readFileSync(new URL('../../dags/churn_data.yaml', import.meta.url), 'utf8')) as { tasks: Record<string, { params: Record<string, unknown> }> }
  // The scheduled run of 2026-10-02 02:00 Berlin covers the day before.
  const interval = { start: new Date('2026-10-01T00:00:00+02:00'), end: new Date('2026-10-02T00:00:00+02:00') }
  const events = await h.run(dag.tasks.ingest_events!.params, { interval })
  assert.equal(events.result.ok, true, JSON.stringify(events.result))
  const rows = await rowsOf(h, 'events')
  assert.ok(rows.length > 10)
  assert.ok(rows.every((r) => String(r.ts) >= '2026-09-30 22:00:00+00' && String(r.ts) < '2026-10-01 22:00:00+00'))
  // Labels are loaded per interval too: the day of 2026-09-15 has the first 200 (at 12:00 UTC, one per user), the day before none.
  const before = await h.run(dag.tasks.ingest_labels!.params, { interval: { start: new Date('2026-09-14T00:00:00+02:00'), end: new Date('2026-09-15T00:00:00+02:00') } })
  assert.equal(before.result.ok, true, JSON.stringify(before.result))
  assert.equal((await h.datasets.get('churn_labels'))!.rows, 0)
  const labels = await h.run(dag.tasks.ingest_labels!.params, { interval: { start: new Date('2026-09-15T00:00:00+02:00'), end: new Date('2026-09-16T00:00:00+02:00') } })
  assert.equal(labels.result.ok, true, JSON.stringify(labels.result))
  const published = (await h.datasets.get('churn_labels'))!
  assert.deepEqual(published.columns, [{ name: 'user_id', type: 'string' }, { name: 'label_ts', type: 'timestamp' }, { name: 'churned', type: 'boolean' }])
  assert.equal(published.rows, 200)
})

test('csv fast path: lines the reader refuses are named or quarantined without a second load', async (t) => {
  const h = await ingestHarness(t)
  writeFileSync(join(h.dagsFolder, 'r.csv'), ['id,name,amount', '1,a,1.5', '2,b,"x"', '3,c,3,extra', '4,"multi', 'line",4', '5,e,"x"', '6,f,6', ''].join('\n'))
  const params = { source: { kind: 'csv', path: 'r.csv' }, dataset: 'r', columns: { amount: { type: 'number' } } }
  const failing = await h.run(params)
  failed(failing.result)
  assert.match(failing.result.message, /^3 bad rows, .*r\.csv:3: column amount: .*"x".*; r\.csv:4: expected 3 fields, found 4; r\.csv:7: column amount: .*"x".*$/)
  assert.doesNotMatch(failing.log.join('\n'), /loading into a table/)
  const kept = await h.run({ ...params, on_bad_rows: 'quarantine', max_bad_rows: 3 })
  assert.deepEqual(kept.result, { ok: true, outputs: { dataset: 'r', version: 1, rows: 3, bad_rows: 3 } })
  assert.doesNotMatch(kept.log.join('\n'), /loading into a table/)
  assert.deepEqual((await rowsOf(h, 'r')).map((r) => [r.id, r.name, r.amount]), [['1', 'a', 1.5], ['4', 'multi\nline', 4], ['6', 'f', 6]])
  const version = (await h.datasets.get('r'))!
  assert.deepEqual((version.badRows!.sample as Array<{ line: number; raw: string }>).map((b) => [b.line, b.raw]), [[3, '2,b,"x"'], [4, '3,c,3,extra'], [7, '5,e,"x"']])
  assert.ok(existsSync(join(h.settings.dir, version.badRows!.location!)))
  // Nothing but the version's own files is left in the datasets folder.
  assert.deepEqual(readdirSync(join(h.settings.dir, 'r')), [version.location.split('/')[1]])
})
