/**
 * `cairn datasets import` reads a file exactly as an `ingest` task with default params does (SPEC
 * section 7: "same reader and type rules as ingest"): the same tricky CSV and JSONL file give the
 * same columns, types and rows through both, and the same broken file the same bad lines.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { openDuckDb, parquetScan } from '../../engine/data/duckdb.ts'
import { ingestHarness } from '../helpers/ingest.ts'
import type { IngestHarness } from '../helpers/ingest.ts'
import { runCommand } from '../helpers/engine-extra.ts'

const MAIN = new URL('../../engine/cli/main.ts', import.meta.url).pathname

// Quotes, a comma and a line break inside fields, unicode, an empty field (null) and a quoted empty
// one (""), timestamps with an offset, in UTC and without one (UTC), a column with no value at all,
// and a column that is whole numbers for 25,000 rows and then text (beyond any sample).
function trickyCsv(): string {
  const lines = [
    'id,name,note,ts,day,amount,flag,nothing,code',
    '1,"Smith, John","He said ""hi""",2026-01-01T00:00:00Z,2026-01-02,1.5,true,,1',
    '2,Zoë 🙂 日本,"multi',
    'line",2026-01-01T01:00:00+02:00,2026-01-03,,false,,2',
    '3,""," padded ",2026-01-01 10:00:00.5,,-2,,,3',
    '4,,,2026-01-02T00:00:00Z,2026-01-04,0,true,,4',
  ]
  for (let i = 5; i < 25_000; i++) lines.push(`${i},n${i},,2026-01-03,2026-01-05,${i}.25,false,,${i}`)
  lines.push('25000,last,,2026-01-03T00:00:00-05:00,,1e3,TRUE,,A7')
  return `${lines.join('\n')}\n`
}

const TRICKY_JSONL = [
  '{"id":1,"name":"Smith, John","note":"multi\\nline","ts":"2026-01-01T01:00:00+02:00","day":"2026-01-02","amount":1.5,"flag":true,"nested":{"a":[1,2]}}',
  '{"id":2,"name":"","note":null,"ts":"2026-01-01 10:00:00","day":null,"amount":2,"flag":false,"nested":null}',
  '',
  '{"id":9007199254740993,"name":"Zoë 🙂","ts":"2026-01-02T00:00:00Z","day":"2026-01-04","amount":-0.5,"flag":null,"nested":[1]}',
].join('\n')

async function ingested(h: IngestHarness, path: string, dataset: string): Promise<{ ok: boolean; message: string }> {
  const { result } = await h.run({ source: { kind: path.endsWith('.csv') ? 'csv' : 'jsonl', path }, dataset })
  return result.ok ? { ok: true, message: '' } : { ok: false, message: result.message }
}

async function imported(h: IngestHarness, path: string, dataset: string): Promise<{ ok: boolean; message: string }> {
  const env = { ...process.env, DATABASE_URL: h.url, CAIRN_HOME: join(h.dir, 'home'), CAIRN_CONFIG: join(h.dir, 'cairn.yaml'), CAIRN_LOG_LEVEL: 'error' }
  const r = await runCommand(process.execPath, [MAIN, 'datasets', 'import', dataset, path], { cwd: h.dagsFolder, env })
  assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.stderr}`)
  return { ok: r.code === 0, message: r.stderr.trim() }
}

/** A version's columns and its rows in order, each as JSON. */
async function contents(h: IngestHarness, dataset: string): Promise<{ columns: unknown; rows: string[] }> {
  const version = (await h.datasets.get(dataset))!
  const duck = await openDuckDb({ threads: 1 })
  try {
    const rows = await duck.rows<{ r: string }>(`SELECT to_json(t)::VARCHAR AS r FROM ${parquetScan(version.files)} t`)
    return { columns: version.columns, rows: rows.map((r) => r.r) }
  } finally {
    duck.close()
  }
}

test('import and ingest give identical types and rows for the same tricky CSV and JSONL', async (t) => {
  const h = await ingestHarness(t)
  writeFileSync(join(h.dagsFolder, 'tricky.csv'), trickyCsv())
  writeFileSync(join(h.dagsFolder, 'tricky.jsonl'), TRICKY_JSONL)
  for (const file of ['tricky.csv', 'tricky.jsonl']) {
    const format = file.split('.')[1]!
    assert.deepEqual(await ingested(h, file, `ingested_${format}`), { ok: true, message: '' }, file)
    const byImport = await imported(h, file, `imported_${format}`)
    assert.equal(byImport.ok, true, byImport.message)
    const a = await contents(h, `ingested_${format}`)
    const b = await contents(h, `imported_${format}`)
    assert.deepEqual(b.columns, a.columns, file)
    assert.deepEqual(b.rows, a.rows, file)
  }
  const csv = await contents(h, 'ingested_csv')
  assert.deepEqual(csv.columns, [
    { name: 'id', type: 'integer' }, { name: 'name', type: 'string' }, { name: 'note', type: 'string' }, { name: 'ts', type: 'timestamp' },
    { name: 'day', type: 'date' }, { name: 'amount', type: 'number' }, { name: 'flag', type: 'boolean' }, { name: 'nothing', type: 'string' }, { name: 'code', type: 'string' },
  ])
  assert.equal(csv.rows.length, 25_000)
  const first = csv.rows.slice(0, 4).map((r) => JSON.parse(r) as Record<string, unknown>)
  assert.deepEqual(first.map((r) => r.name), ['Smith, John', 'Zoë 🙂 日本', '', null], 'a quoted empty field is the empty string, an empty one null')
  assert.deepEqual(first.map((r) => r.ts), ['2026-01-01 00:00:00+00', '2025-12-31 23:00:00+00', '2026-01-01 10:00:00.5+00', '2026-01-02 00:00:00+00'])
  assert.deepEqual(JSON.parse(csv.rows.at(-1)!), { id: 25000, name: 'last', note: null, ts: '2026-01-03 05:00:00+00', day: null, amount: 1000, flag: true, nothing: null, code: 'A7' })
  const jsonl = await contents(h, 'ingested_jsonl')
  assert.deepEqual(jsonl.columns, [
    { name: 'id', type: 'integer' }, { name: 'name', type: 'string' }, { name: 'note', type: 'string' }, { name: 'ts', type: 'timestamp' },
    { name: 'day', type: 'date' }, { name: 'amount', type: 'number' }, { name: 'flag', type: 'boolean' }, { name: 'nested', type: 'string' },
  ])
  assert.deepEqual(jsonl.rows.map((r) => (JSON.parse(r) as { nested: unknown }).nested), ['{"a":[1,2]}', null, '[1]'])
})

test('import and ingest name the same bad lines of a broken CSV and JSONL, and publish nothing', async (t) => {
  const h = await ingestHarness(t)
  writeFileSync(join(h.dagsFolder, 'bad.csv'), 'id,v\n1,a\n2,b,extra\n\n4,d\n5\n')
  writeFileSync(join(h.dagsFolder, 'bad.jsonl'), '{"a": 1}\n{"a": \n[1]\n{"a": 2}\n')
  for (const [file, lines] of [['bad.csv', 'bad.csv:3: expected 2 fields, found 3; bad.csv:6: expected 2 fields, found 1'], ['bad.jsonl', 'bad.jsonl:2: not valid JSON; bad.jsonl:3: not a JSON object']] as const) {
    const byIngest = await ingested(h, file, 'by_ingest')
    const byImport = await imported(h, file, 'by_import')
    assert.equal(byIngest.ok, false)
    assert.equal(byImport.ok, false)
    assert.match(byIngest.message, /^2 bad rows, nothing was published/)
    assert.match(byImport.message, new RegExp(`^cairn datasets import: cannot read ${file.replace('.', '\\.')} as \\w+: 2 bad rows, nothing was published: `))
    const named = (message: string) => message.slice(message.indexOf(`${file}:`))
    assert.equal(named(byImport.message), lines)
    assert.equal(named(byIngest.message), lines)
  }
  assert.equal(await h.datasets.get('by_ingest'), undefined)
  assert.equal(await h.datasets.get('by_import'), undefined)
})
