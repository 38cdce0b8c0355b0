/**
 * The shared file reader (engine/data/reader/) on real files with a real DuckDB, by both of its
 * paths (straight into a staged folder, and into the `loaded` table): types inferred from every
 * value (a late row beyond the fast path's sample that changes a column's type), timestamps with,
 * without and mixed offsets (UTC), a quoted empty field against an empty one, declared types
 * enforced as bad rows, nested JSON kept as text, and the format of a path.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ColumnType } from '../../engine/data/column-types.ts'
import { openDuckDb, parquetScan } from '../../engine/data/duckdb.ts'
import type { DuckDb } from '../../engine/data/duckdb.ts'
import { badRowsOf } from '../../engine/data/reader/bad-rows.ts'
import type { CsvOptions, FileFormat } from '../../engine/data/reader/csv.ts'
import { isFailure } from '../../engine/data/reader/failure.ts'
import { LOADED } from '../../engine/data/reader/loaded.ts'
import { formatOfPath, readFiles } from '../../engine/data/reader/read-files.ts'

const dir = mkdtempSync(join(tmpdir(), 'cairn-reader-'))
after(() => rmSync(dir, { recursive: true, force: true }))
let staging = 0

function file(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

interface Read {
  columns: Array<{ name: string; type: ColumnType }>
  rows: Record<string, unknown>[]
  /** Whether the rows went straight into the staged folder. */
  direct: boolean
  log: string[]
}

/** Reads `path` by the fast path (fast = true, CSV only) or into the table, and returns the good rows as text. */
async function read(duck: DuckDb, path: string, format: FileFormat, fast: boolean, options: CsvOptions = {}, declared: Record<string, ColumnType> = {}): Promise<Read | string> {
  const log: string[] = []
  const ctx = { duck, declared: new Map(Object.entries(declared).map(([name, type]) => [name, { type, nullable: true }])), log: { info: (m: string) => void log.push(m) } }
  const stagedDir = join(dir, `staged-${++staging}`)
  const stage = async () => {
    mkdirSync(stagedDir)
    return { dataset: 'x', dir: stagedDir, discard: async () => rmSync(stagedDir, { recursive: true, force: true }) }
  }
  await duck.run(`DROP TABLE IF EXISTS ${LOADED}`)
  const got = await readFiles(format, [{ path, label: 'f' }], options, ctx, fast ? stage : undefined)
  if (isFailure(got)) return got.message
  const bad = await badRowsOf(duck, got, { onBadRows: 'fail', maxBadRows: 0 })
  if (isFailure(bad)) return bad.message
  const list = got.plans.map((p) => `CAST("${p.name}" AS VARCHAR) AS "${p.name}"`).join(', ')
  const from = 'written' in got ? parquetScan(got.files) : `${LOADED} WHERE __problem IS NULL`
  const rows = await duck.rows(`SELECT ${list} FROM ${from}`)
  return { columns: got.plans.map((p) => ({ name: p.name, type: p.type })), rows, direct: 'written' in got, log }
}

function ok(r: Read | string): Read {
  assert.equal(typeof r, 'object', String(r))
  return r as Read
}

test('types come from every value, beyond the fast path sample too, and timestamps without an offset are UTC', async () => {
  // Row 30,001 turns `code` into text and `n` into a number: a sample of the first rows would guess wrong.
  const lines = ['code,n,at']
  for (let i = 0; i < 30_000; i++) lines.push(`${i},${i},2026-01-01T00:00:00Z`)
  lines.push('A7,0.5,2026-01-01 12:00:00')
  const path = file('late.csv', `${lines.join('\n')}\n`)
  const duck = await openDuckDb({ threads: 1 })
  try {
    for (const fast of [true, false]) {
      const got = ok(await read(duck, path, 'csv', fast))
      assert.deepEqual(got.columns, [{ name: 'code', type: 'string' }, { name: 'n', type: 'number' }, { name: 'at', type: 'timestamp' }])
      assert.equal(got.rows.length, 30_001)
      assert.deepEqual(got.rows.at(-1), { code: 'A7', n: '0.5', at: '2026-01-01 12:00:00+00' })
      assert.equal(got.direct, false, 'the late row sends the fast path to the table, which infers again')
    }
    // Without such a row the fast path keeps its sampled types, which are the types of every value.
    const plain = file('plain.csv', `${lines.slice(0, -1).join('\n')}\n`)
    const fast = ok(await read(duck, plain, 'csv', true))
    assert.equal(fast.direct, true)
    assert.deepEqual(fast.columns, ok(await read(duck, plain, 'csv', false)).columns)
    assert.deepEqual(fast.columns.map((c) => c.type), ['integer', 'integer', 'timestamp'])
  } finally {
    duck.close()
  }
})

test('csv: an empty field is null, a quoted empty one the empty string; a column empty in the sample is typed from the rest', async () => {
  const lines = ['s,k', '"",', ',']
  for (let i = 0; i < 25_000; i++) lines.push('x,')
  lines.push('y,7')
  const path = file('empty.csv', `${lines.join('\n')}\n`)
  const duck = await openDuckDb({ threads: 1 })
  try {
    for (const fast of [true, false]) {
      const got = ok(await read(duck, path, 'csv', fast))
      assert.deepEqual(got.columns, [{ name: 's', type: 'string' }, { name: 'k', type: 'integer' }])
      assert.deepEqual(got.rows.slice(0, 2), [{ s: '', k: null }, { s: null, k: null }])
      assert.deepEqual(got.rows.at(-1), { s: 'y', k: '7' })
    }
  } finally {
    duck.close()
  }
})

test('csv inference rules: plain decimals, true/false in any case, ISO dates and timestamps; anything else is text', async () => {
  const path = file('rules.csv', 'a,b,c,d,e,f,g\n1,TRUE,2026-01-01,1,yes,7,0x10\ninf,false,2026-01-01 10:00:00,2.5,no, 8 ,1_000\n')
  const duck = await openDuckDb({ threads: 1 })
  try {
    for (const fast of [true, false]) {
      const got = ok(await read(duck, path, 'csv', fast))
      assert.deepEqual(got.columns.map((c) => c.type), ['string', 'boolean', 'timestamp', 'number', 'string', 'integer', 'string'])
      assert.deepEqual(got.rows[1], { a: 'inf', b: 'false', c: '2026-01-01 10:00:00+00', d: '2.5', e: 'no', f: '8', g: '1_000' })
    }
  } finally {
    duck.close()
  }
})

test('ISO-8601 timestamps without seconds or with a lowercase z read as timestamps, declared or inferred, in csv and jsonl', async () => {
  // SPEC 7: CSV/JSONL accept ISO-8601 (RFC 3339's lowercase z included); DuckDB's own cast refuses these spellings.
  const values = ['2026-01-01T10:00Z', '2026-01-01T10:00+01:00', '2026-01-01 10:00-0130', '2026-01-01T10:00:00z', '2026-01-01T10:00:00.250z', '2026-01-01T10:00']
  const expected = ['2026-01-01 10:00:00+00', '2026-01-01 09:00:00+00', '2026-01-01 11:30:00+00', '2026-01-01 10:00:00+00', '2026-01-01 10:00:00.25+00', '2026-01-01 10:00:00+00']
  const csv = file('iso.csv', `id,at\n${values.map((v, i) => `${i},${v}`).join('\n')}\n`)
  const jsonl = file('iso.jsonl', values.map((v, i) => JSON.stringify({ id: i, at: v })).join('\n') + '\n')
  for (const [path, format, fast] of [[csv, 'csv', true], [csv, 'csv', false], [jsonl, 'jsonl', false]] as const) {
    for (const declared of [{}, { at: 'timestamp' }] as Record<string, ColumnType>[]) {
      const duck = await openDuckDb({ threads: 1 })
      try {
        const got = ok(await read(duck, path, format, fast, {}, declared))
        assert.deepEqual(got.columns, [{ name: 'id', type: 'integer' }, { name: 'at', type: 'timestamp' }], `${format} fast=${fast} ${JSON.stringify(declared)}`)
        assert.deepEqual(got.rows.map((r) => r.at), expected, `${format} fast=${fast} ${JSON.stringify(declared)}`)
      } finally {
        duck.close()
      }
    }
  }
  const duck = await openDuckDb({ threads: 1 })
  try {
    // Still not timestamps: a missing minute, an hour past 23, a time without a date.
    const bad = file('iso-bad.csv', 'at\n2026-01-01T10Z\n')
    assert.deepEqual(ok(await read(duck, bad, 'csv', false)).columns, [{ name: 'at', type: 'string' }])
    assert.match(String(await read(duck, file('iso-bad2.csv', 'at\n2026-01-01T25:00Z\n'), 'csv', false, {}, { at: 'timestamp' })), /is not an ISO-8601 timestamp/)
  } finally {
    duck.close()
  }
})

test('csv with header: false: the first line is a row, columns are column0, column1, ...; bad lines keep their own numbers', async () => {
  const path = file('noheader.csv', 'u1;2026-01-01T00:00:00Z;3\nu2;2026-01-02T00:00:00Z;4\n')
  for (const fast of [true, false]) {
    const duck = await openDuckDb({ threads: 1 })
    try {
      const got = ok(await read(duck, path, 'csv', fast, { header: false, delimiter: ';' }))
      assert.deepEqual(got.columns, [{ name: 'column0', type: 'string' }, { name: 'column1', type: 'timestamp' }, { name: 'column2', type: 'integer' }])
      assert.deepEqual(got.rows.map((r) => r.column0), ['u1', 'u2'])
      const bad = file('noheader-bad.csv', '1,a\nx,b\n3,c\n')
      assert.match(String(await read(duck, bad, 'csv', fast, { header: false }, { column0: 'integer' })), /^1 bad row, nothing was published: f:2: column column0: "x" is not an integer$/)
    } finally {
      duck.close()
    }
  }
})

test('declared types are enforced as bad rows; a declared column the file lacks fails; nested JSON is kept as text', async () => {
  const csv = file('declared.csv', 'id,amount,n\n1,2,3\n2,x,4\n3,5,1.5\n')
  const duck = await openDuckDb({ threads: 1 })
  try {
    for (const fast of [true, false]) {
      assert.match(String(await read(duck, csv, 'csv', fast, {}, { amount: 'number', n: 'integer' })), /^2 bad rows, nothing was published: f:3: column amount: .*"x".*; f:4: column n: "1\.5" is not an integer$/)
      assert.match(String(await read(duck, csv, 'csv', fast, {}, { missing: 'string' })), /f has no column missing \(declared in columns\); its columns are: id, amount, n/)
    }
    const asText = ok(await read(duck, csv, 'csv', true, {}, { id: 'string' }))
    assert.deepEqual(asText.columns, [{ name: 'id', type: 'string' }, { name: 'amount', type: 'string' }, { name: 'n', type: 'number' }])
    const nested = file('nested.jsonl', '{"a": 1, "b": {"c": 2}}\n')
    const json = ok(await read(duck, nested, 'jsonl', false))
    assert.deepEqual(json.columns, [{ name: 'a', type: 'integer' }, { name: 'b', type: 'string' }])
    assert.deepEqual(json.rows, [{ a: '1', b: '{"c":2}' }])
  } finally {
    duck.close()
  }
})

test('a semicolon-separated CSV straight to Parquet with the dataset types; the format of a path', async () => {
  const csv = file('semi.csv', 'day;flag;when\n2026-01-02;true;2026-01-01T01:00:00+01:00\n;false;\n')
  const duck = await openDuckDb({ threads: 1 })
  try {
    const got = ok(await read(duck, csv, 'csv', true, { delimiter: ';' }))
    assert.equal(got.direct, true)
    assert.deepEqual(got.columns, [{ name: 'day', type: 'date' }, { name: 'flag', type: 'boolean' }, { name: 'when', type: 'timestamp' }])
    assert.deepEqual(got.rows, [{ day: '2026-01-02', flag: 'true', when: '2026-01-01 00:00:00+00' }, { day: null, flag: 'false', when: null }])
  } finally {
    duck.close()
  }
  assert.equal(formatOfPath('x/events.CSV'), 'csv')
  assert.equal(formatOfPath('events.ndjson'), 'jsonl')
  assert.equal(formatOfPath('events.parquet'), 'parquet')
  assert.equal(formatOfPath('events.txt'), undefined)
})

test('a late value that DuckDB casts but the inference rules refuse widens the sampled type to string (1 is no boolean, inf no number, 2026-1-2 no date)', async () => {
  // The first 25,000 rows (beyond the sample) fit boolean, number and date; each late value casts in
  // DuckDB (TRY_CAST('1' AS BOOLEAN) is true) but is not one by the inference rules.
  const lines = ['flag,score,day,n']
  for (let i = 0; i < 25_000; i++) lines.push(`${i % 2 === 0 ? 'true' : 'FALSE'},${i}.5,2026-01-0${(i % 9) + 1},-${i}`)
  const late = ['1,0.5,2026-01-02,7', 'true,inf,2026-01-02,7', 'true,0.5,2026-1-2,7']
  const duck = await openDuckDb({ threads: 1 })
  try {
    for (const [k, row] of late.entries()) {
      const path = file(`late-${k}.csv`, `${[...lines, row].join('\n')}\n`)
      const expected = ['boolean', 'number', 'date', 'integer']
      expected[k] = 'string'
      for (const fast of [true, false]) {
        const got = ok(await read(duck, path, 'csv', fast))
        assert.deepEqual(got.columns.map((c) => c.type), expected, `${row}, ${fast ? 'fast path' : 'table'}`)
        assert.equal(got.rows.length, 25_001)
        if (fast) assert.equal(got.direct, false, 'the late value sends the fast path to the table, which infers again')
      }
    }
    // Mixed classes: integers with booleans, dates with integers are text; integers with decimals numbers; dates with timestamps timestamps.
    const mixed = file('mixed.csv', 'a,b,c,d\n1,2026-01-01,1,2026-01-01\ntrue,7,2.5,2026-01-01 10:00:00Z\n')
    for (const fast of [true, false]) {
      assert.deepEqual(ok(await read(duck, mixed, 'csv', fast)).columns.map((c) => c.type), ['string', 'string', 'number', 'timestamp'])
    }
  } finally {
    duck.close()
  }
})

test('the fast path: a bad value in a column DuckDB reads natively keeps its line and reason, 1.5 in an integer column is a bad row, a line over DuckDB\'s default limit is read whole', async () => {
  const duck = await openDuckDb({ threads: 1 })
  try {
    const csv = file('fast-bad.csv', 'id,amount,at\n1,2.5,2026-01-01 10:00:00\n2,abc,2026-01-01T10:00:00+02:00\n3,4,2026-01-01\n')
    const declared = { id: 'integer', amount: 'number', at: 'timestamp' } as const
    assert.match(String(await read(duck, csv, 'csv', true, {}, declared)), /^1 bad row, nothing was published: f:3: column amount: .*"abc".*$/)
    const fixed = file('fast-good.csv', 'id,amount,at\n1,2.5,2026-01-01 10:00:00\n2,3,2026-01-01T10:00:00+02:00\n3,4,2026-01-01\n')
    const good = ok(await read(duck, fixed, 'csv', true, {}, declared))
    assert.equal(good.direct, true)
    assert.deepEqual(good.rows.map((r) => r.at), ['2026-01-01 10:00:00+00', '2026-01-01 08:00:00+00', '2026-01-01 00:00:00+00'], 'no offset is UTC')
    const half = file('fast-half.csv', 'id,amount,at\n1,2.5,2026-01-01\n1.5,3,2026-01-01\n')
    assert.match(String(await read(duck, half, 'csv', true, {}, declared)), /^1 bad row, nothing was published: f:3: column id: "1\.5" is not an integer$/)
    const notTime = file('fast-time.csv', 'id,amount,at\n1,2.5,2026-01-01\n2,3,yesterday\n')
    assert.match(String(await read(duck, notTime, 'csv', true, {}, declared)), /^1 bad row, nothing was published: f:3: column at: "yesterday" is not an ISO-8601 timestamp$/)
    const long = 'y'.repeat(3_000_000)
    const wide = file('fast-long.csv', `id,text\n1,a\n2,${long}\n3,c\n`)
    const got = ok(await read(duck, wide, 'csv', true, {}, { id: 'integer' }))
    assert.deepEqual(got.rows.map((r) => [r.id, String(r.text).length]), [['1', 1], ['2', long.length], ['3', 1]])
    assert.equal(got.direct, false, 'the overlong line takes the table path')
  } finally {
    duck.close()
  }
})
