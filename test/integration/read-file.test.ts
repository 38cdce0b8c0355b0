/**
 * The shared file reader (engine/data/read-file.ts) on real files with a real DuckDB: inferred types
 * from every value (a late row that changes a column's type), timestamps with, without and mixed
 * offsets (UTC), declared types enforced, nested JSON refused, and the table and Parquet outputs.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDuckDb, sqlString } from '../../engine/data/duckdb.ts'
import { formatOfPath, loadFileIntoTable, readFileToParquet } from '../../engine/data/read-file.ts'

const dir = mkdtempSync(join(tmpdir(), 'cairn-read-file-'))
after(() => rmSync(dir, { recursive: true, force: true }))

function file(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

test('types come from every value, and timestamps without an offset are UTC', async () => {
  // Row 30,001 turns `code` into text and `n` into a number: a sample of the first rows would guess wrong.
  const lines = ['code,n,at']
  for (let i = 0; i < 30_000; i++) lines.push(`${i},${i},2026-01-01T00:00:00Z`)
  lines.push('A7,0.5,2026-01-01 12:00:00')
  const path = file('late.csv', `${lines.join('\n')}\n`)
  const duck = await openDuckDb({ threads: 1 })
  try {
    const loaded = await loadFileIntoTable(duck, path, 't', { format: 'csv' })
    assert.deepEqual(loaded.columns, [{ name: 'code', type: 'string' }, { name: 'n', type: 'number' }, { name: 'at', type: 'timestamp' }])
    assert.equal(loaded.rows, 30_001)
    const [last] = await duck.rows<{ at: string }>(`SELECT strftime("at", '%Y-%m-%dT%H:%M:%SZ') AS "at" FROM t WHERE code = 'A7'`)
    assert.equal(last!.at, '2026-01-01T12:00:00Z')
    const types = await duck.rows<{ column_type: string }>(`DESCRIBE t`)
    assert.deepEqual(types.map((c) => c.column_type), ['VARCHAR', 'DOUBLE', 'TIMESTAMP WITH TIME ZONE'])
  } finally {
    duck.close()
  }
})

test('declared types are enforced; a declared column the file lacks, or nested JSON, is refused', async () => {
  const csv = file('declared.csv', 'id,amount\n1,2\n2,x\n')
  const duck = await openDuckDb({ threads: 1 })
  try {
    await assert.rejects(loadFileIntoTable(duck, csv, 'a', { format: 'csv', declared: { amount: 'number' } }), /does not have its column's type/)
    await assert.rejects(loadFileIntoTable(duck, csv, 'b', { format: 'csv', declared: { missing: 'string' } }), /column missing is declared but .* has no such column \(it has id, amount\)/)
    const ok = await loadFileIntoTable(duck, csv, 'c', { format: 'csv', declared: { id: 'string' } })
    assert.deepEqual(ok.columns, [{ name: 'id', type: 'string' }, { name: 'amount', type: 'string' }])
    const nested = file('nested.jsonl', '{"a": 1, "b": {"c": 2}}\n')
    await assert.rejects(loadFileIntoTable(duck, nested, 'd', { format: 'jsonl' }), /column b of .* holds STRUCT/)
  } finally {
    duck.close()
  }
})

test('a file straight to Parquet: one file with the dataset types, and a semicolon-separated CSV', async () => {
  const csv = file('semi.csv', 'day;flag;when\n2026-01-02;true;2026-01-01T01:00:00+01:00\n;false;\n')
  const out = mkdtempSync(join(dir, 'staged-'))
  const duck = await openDuckDb({ threads: 1 })
  try {
    const written = await readFileToParquet(duck, csv, out, { format: 'csv', delimiter: ';' })
    assert.deepEqual(written.columns, [{ name: 'day', type: 'date' }, { name: 'flag', type: 'boolean' }, { name: 'when', type: 'timestamp' }])
    assert.equal(written.rows, 2)
    assert.equal(written.file, join(out, 'part-0.parquet'))
    const rows = await duck.rows(`SELECT CAST(day AS VARCHAR) AS day, flag, strftime("when", '%Y-%m-%dT%H:%M:%SZ') AS w FROM read_parquet(${sqlString(written.file)})`)
    assert.deepEqual(rows, [{ day: '2026-01-02', flag: true, w: '2026-01-01T00:00:00Z' }, { day: null, flag: false, w: null }])
  } finally {
    duck.close()
  }
  assert.equal(formatOfPath('x/events.CSV'), 'csv')
  assert.equal(formatOfPath('events.ndjson'), 'jsonl')
  assert.equal(formatOfPath('events.parquet'), 'parquet')
  assert.equal(formatOfPath('events.txt'), undefined)
})
