/**
 * `cairn datasets list|show|export|import` as a user runs them: each a real CLI process on the
 * database (DATABASE_URL) and datasets directory (CAIRN_HOME/datasets) of a deployment, with
 * datasets seeded through the datasets service. Covers a CSV with hostile values (quotes, commas,
 * newlines, unicode, empty fields, timestamps with and without offsets) through import and export in
 * both formats, jsonl and parquet imports, lineage and quarantine in `show`, a reader that stops
 * reading (`| head`), and the exit codes.
 */
import { before, after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { createDatasets } from '../../engine/data/datasets.ts'
import type { Datasets } from '../../engine/data/datasets.ts'
import { openDuckDb, sqlString } from '../../engine/data/duckdb.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'
import { runCommand } from '../helpers/engine-extra.ts'

const MAIN = new URL('../../engine/cli/main.ts', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'cairn-cli-datasets-'))
const home = join(dir, 'home')
let url: string
let db: Db
let datasets: Datasets
// Hooks registered inside before() would run when it ends; these run after every test.
const cleanups: (() => Promise<void>)[] = []
const env = (): NodeJS.ProcessEnv => ({ ...process.env, DATABASE_URL: url, CAIRN_HOME: home, CAIRN_CONFIG: join(dir, 'cairn.yaml'), CAIRN_LOG_LEVEL: 'error' })
const cairn = (...args: string[]) => runCommand(process.execPath, [MAIN, ...args], { cwd: dir, env: env() })

// Quotes, a comma, a newline inside a field, unicode, empty fields (null) and a quoted empty one (the
// empty string), a field with outer spaces, and
// timestamps in UTC, with an offset, and without one (read as UTC) in the same column.
const TRICKY_CSV = [
  'id,name,note,ts,day,amount,flag',
  '1,"Smith, John","He said ""hi""",2026-01-01T00:00:00Z,2026-01-02,1.5,true',
  '2,Zoë 🙂 日本,"multi',
  'line",2026-01-01T01:00:00+02:00,2026-01-03,,false',
  '3,""," padded ",2026-01-01 10:00:00.5,,-2,',
  '4,,,2026-01-02T00:00:00Z,2026-01-04,0,true',
  '',
].join('\n')

const EXPECTED_CSV = [
  'id,name,note,ts,day,amount,flag',
  '1,"Smith, John","He said ""hi""",2026-01-01T00:00:00.000Z,2026-01-02,1.5,true',
  '2,Zoë 🙂 日本,"multi',
  'line",2025-12-31T23:00:00.000Z,2026-01-03,,false',
  '3,""," padded ",2026-01-01T10:00:00.500Z,,-2.0,',
  '4,,,2026-01-02T00:00:00.000Z,2026-01-04,0.0,true',
  '',
].join('\n')

const EXPECTED_JSONL = [
  '{"id":1,"name":"Smith, John","note":"He said \\"hi\\"","ts":"2026-01-01T00:00:00.000Z","day":"2026-01-02","amount":1.5,"flag":true}',
  '{"id":2,"name":"Zoë 🙂 日本","note":"multi\\nline","ts":"2025-12-31T23:00:00.000Z","day":"2026-01-03","amount":null,"flag":false}',
  '{"id":3,"name":"","note":" padded ","ts":"2026-01-01T10:00:00.500Z","day":null,"amount":-2.0,"flag":null}',
  '{"id":4,"name":null,"note":null,"ts":"2026-01-02T00:00:00.000Z","day":"2026-01-04","amount":0.0,"flag":true}',
  '',
].join('\n')

const TRICKY_COLUMNS = [
  { name: 'id', type: 'integer' },
  { name: 'name', type: 'string' },
  { name: 'note', type: 'string' },
  { name: 'ts', type: 'timestamp' },
  { name: 'day', type: 'date' },
  { name: 'amount', type: 'number' },
  { name: 'flag', type: 'boolean' },
]

before(async () => {
  const log = testLogger()
  url = await createTestDatabase({ after: (fn) => void cleanups.push(fn) })
  db = createDb(url, { log })
  await migrate(db, log)
  mkdirSync(home, { recursive: true })
  datasets = createDatasets({ db, dir: join(home, 'datasets'), producer: { kind: 'actor', actor: 'seed' } })
})

after(async () => {
  await db.close()
  for (const step of cleanups) await step()
  rmSync(dir, { recursive: true, force: true })
})

async function seed(name: string, sql: string, extra: Partial<Parameters<Datasets['publish']>[0][number]> = {}): Promise<number> {
  const staged = await datasets.stage(name)
  const duck = await openDuckDb({ threads: 1 })
  try {
    await duck.run(`COPY (${sql}) TO ${sqlString(join(staged.dir, 'part-0.parquet'))} (FORMAT parquet)`)
  } finally {
    duck.close()
  }
  const [published] = await datasets.publish([{ staged, producedKind: 'ingest', ...extra }])
  return published!.version.version
}

test('import a CSV with hostile values, then export it as csv and jsonl exactly', async () => {
  writeFileSync(join(dir, 'tricky.csv'), TRICKY_CSV)
  const imported = await cairn('datasets', 'import', 'tricky', 'tricky.csv')
  assert.equal(imported.code, 0, imported.stderr)
  assert.equal(imported.stdout.trim().split('\n').at(-1), '1', 'the version is the last line')

  const shown = await cairn('datasets', 'show', 'tricky', '--format', 'json')
  assert.equal(shown.code, 0, shown.stderr)
  const json = JSON.parse(shown.stdout)
  assert.deepEqual(Object.keys(json).slice(0, 6), ['name', 'version', 'rows', 'columns', 'created_at', 'produced_by'])
  assert.equal(json.name, 'tricky')
  assert.equal(json.version, 1)
  assert.equal(json.rows, 4)
  assert.deepEqual(json.columns, TRICKY_COLUMNS)
  assert.match(json.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  assert.equal(json.produced_by, null, 'an import has no run')
  assert.equal(json.produced_kind, 'import')
  assert.ok(typeof json.actor === 'string' && json.actor.length > 0)

  const csv = await cairn('datasets', 'export', 'tricky')
  assert.equal(csv.code, 0, csv.stderr)
  assert.equal(csv.stdout, EXPECTED_CSV)
  const jsonl = await cairn('datasets', 'export', 'tricky', '--format', 'jsonl')
  assert.equal(jsonl.code, 0, jsonl.stderr)
  assert.equal(jsonl.stdout, EXPECTED_JSONL)
  assert.deepEqual(jsonl.stdout.trim().split('\n').map((l) => JSON.parse(l).id), [1, 2, 3, 4])

  // What export wrote reads back to the same rows: csv and jsonl round trips give identical exports.
  writeFileSync(join(dir, 'again.csv'), csv.stdout)
  writeFileSync(join(dir, 'again.jsonl'), jsonl.stdout)
  assert.equal((await cairn('datasets', 'import', 'tricky', 'again.csv')).stdout.trim(), '2')
  assert.equal((await cairn('datasets', 'import', 'tricky', 'again.jsonl')).stdout.trim(), '3')
  for (const version of ['2', '3']) {
    assert.equal((await cairn('datasets', 'export', 'tricky', '--version', version)).stdout, EXPECTED_CSV, `version ${version}`)
    assert.deepEqual(JSON.parse((await cairn('datasets', 'show', 'tricky', '--version', version, '--format', 'json')).stdout).columns, TRICKY_COLUMNS)
  }
  // The older version is still there as it was.
  assert.equal((await cairn('datasets', 'export', 'tricky', '--version', '1', '--format', 'jsonl')).stdout, EXPECTED_JSONL)
})

test('jsonl timestamps with offsets, naive parquet timestamps (UTC) and integer widths', async () => {
  writeFileSync(join(dir, 'events.jsonl'), [
    '{"user":"a","at":"2026-03-29T01:30:00+01:00","n":1}',
    '{"user":"b","at":"2026-03-29T00:00:00","n":null}',
    '{"user":"c\\u0000x","at":null,"n":9007199254740993}',
    '',
  ].join('\n'))
  const imported = await cairn('datasets', 'import', 'events', 'events.jsonl')
  assert.equal(imported.code, 0, imported.stderr)
  const rows = (await cairn('datasets', 'export', 'events', '--format', 'jsonl')).stdout
  assert.equal(rows, [
    '{"user":"a","at":"2026-03-29T00:30:00.000Z","n":1}',
    '{"user":"b","at":"2026-03-29T00:00:00.000Z","n":null}',
    '{"user":"c\\u0000x","at":null,"n":9007199254740993}',
    '',
  ].join('\n'))

  const duck = await openDuckDb({ threads: 1 })
  try {
    await duck.run(`COPY (SELECT i::INTEGER AS k, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (i) MINUTE AS at, (i * 0.5)::FLOAT AS f FROM range(3) t(i)) TO ${sqlString(join(dir, 'naive.parquet'))} (FORMAT parquet)`)
  } finally {
    duck.close()
  }
  const parquet = await cairn('datasets', 'import', 'naive', 'naive.parquet')
  assert.equal(parquet.code, 0, parquet.stderr)
  assert.deepEqual(JSON.parse((await cairn('datasets', 'show', 'naive', '--format', 'json')).stdout).columns, [
    { name: 'k', type: 'integer' },
    { name: 'at', type: 'timestamp' },
    { name: 'f', type: 'number' },
  ])
  assert.equal((await cairn('datasets', 'export', 'naive')).stdout, 'k,at,f\n0,2026-01-01T00:00:00.000Z,0.0\n1,2026-01-01T00:01:00.000Z,0.5\n2,2026-01-01T00:02:00.000Z,1.0\n')
})

test('list and show: latest versions, lineage, expectation report and quarantined rows', async () => {
  const v = await seed('churn_source', `SELECT 'u' || i AS user_id, i::BIGINT AS amount FROM range(5) t(i)`)
  await seed('churn_training', `SELECT 'u1' AS user_id, 1::BIGINT AS churned`, {
    inputs: [{ dataset: 'churn_source', version: v }, { feature_view: 'user_activity', definition_version: 2 }],
    expectations: { checks: [{ name: 'min_rows', passed: true, expected: 1, actual: 1 }, { name: 'not_null(user_id)', passed: false, failing_rows: 2 }] },
    badRows: { count: 2, location: 'bad_rows.parquet' },
  })
  const list = await cairn('datasets', 'list', '--format', 'json')
  assert.equal(list.code, 0, list.stderr)
  const byName = new Map((JSON.parse(list.stdout) as { name: string; version: number; rows: number }[]).map((d) => [d.name, d]))
  assert.deepEqual(Object.keys(byName.get('churn_source')!), ['name', 'version', 'rows', 'created_at', 'updated_at'])
  assert.equal(byName.get('tricky')!.version, 3)
  assert.equal(byName.get('churn_source')!.rows, 5)
  const table = await cairn('datasets', 'list')
  assert.match(table.stdout, /^DATASET +VERSION +ROWS +UPDATED +CREATED$/m)
  assert.match(table.stdout, /^churn_source +1 +5 /m)

  const json = JSON.parse((await cairn('datasets', 'show', 'churn_training', '--format', 'json')).stdout)
  assert.deepEqual(json.inputs, [{ dataset: 'churn_source', version: 1 }, { feature_view: 'user_activity', definition_version: 2 }])
  assert.deepEqual(json.bad_rows, { count: 2, location: 'bad_rows.parquet' })
  assert.equal(json.expectations.checks.length, 2)
  const text = await cairn('datasets', 'show', 'churn_training')
  assert.equal(text.code, 0, text.stderr)
  assert.match(text.stdout, /^dataset churn_training, version 1 \(latest\)$/m)
  assert.match(text.stdout, /^ {2}user_id +string$/m)
  assert.match(text.stdout, /^ {2}churned +integer$/m)
  assert.match(text.stdout, /^ {2}dataset churn_source@1$/m)
  assert.match(text.stdout, /^ {2}feature view user_activity \(definition 2\)$/m)
  assert.match(text.stdout, /^ {2}pass {2}min_rows/m)
  assert.match(text.stdout, /^ {2}FAIL {2}not_null\(user_id\)/m)
  assert.match(text.stdout, /^bad rows: 2 kept aside by quarantine/m)
})

test('exit codes: unknown dataset or version 1, malformed arguments 2; a failed import leaves nothing', async () => {
  const unknown = await cairn('datasets', 'show', 'nope')
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /no dataset "nope"/)
  assert.equal((await cairn('datasets', 'export', 'nope')).code, 1)
  const noVersion = await cairn('datasets', 'export', 'tricky', '--version', '99')
  assert.equal(noVersion.code, 1)
  assert.match(noVersion.stderr, /dataset tricky has no version 99 \(the latest is 3\)/)
  for (const args of [['datasets'], ['datasets', 'frob'], ['datasets', 'export'], ['datasets', 'export', 'tricky', '--format', 'xml'], ['datasets', 'show', 'tricky', '--version', '0'], ['datasets', 'import', 'Bad-Name', 'tricky.csv'], ['datasets', 'import', 'x', 'file.txt'], ['datasets', 'list', 'extra']]) {
    const r = await cairn(...args)
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, /^cairn datasets: /, args.join(' '))
  }
  const before = readdirSync(join(home, 'datasets'))
  writeFileSync(join(dir, 'broken.jsonl'), '{"a": 1}\n{"a": \n')
  const broken = await cairn('datasets', 'import', 'broken', 'broken.jsonl')
  assert.equal(broken.code, 1)
  assert.match(broken.stderr, /cannot read broken\.jsonl as jsonl/)
  assert.equal((await cairn('datasets', 'show', 'broken')).code, 1)
  const leftovers = readdirSync(join(home, 'datasets')).filter((n) => !before.includes(n)).flatMap((n) => readdirSync(join(home, 'datasets', n)))
  assert.deepEqual(leftovers, [], 'no staged folder is left behind')
  const missingFile = await cairn('datasets', 'import', 'x', 'missing.csv')
  assert.equal(missingFile.code, 1, missingFile.stderr)
})

test('import reads a file anywhere the user can (the allowed paths limit ingest only), by an absolute path too', async () => {
  const elsewhere = mkdtempSync(join(tmpdir(), 'cairn-cli-import-elsewhere-'))
  cleanups.push(async () => rmSync(elsewhere, { recursive: true, force: true }))
  writeFileSync(join(elsewhere, 'outside.csv'), 'id,at\n1,2026-01-01T00:00:00Z\n')
  writeFileSync(join(dir, 'cairn.yaml'), `data: { allowed_paths: [${JSON.stringify(join(dir, 'nothing-here'))}] }\n`)
  try {
    const imported = await cairn('datasets', 'import', 'outside', join(elsewhere, 'outside.csv'))
    assert.equal(imported.code, 0, imported.stderr)
    assert.equal(imported.stdout.trim().split('\n').at(-1), '1')
    const shown = JSON.parse((await cairn('datasets', 'show', 'outside', '--format', 'json')).stdout)
    assert.deepEqual([shown.rows, shown.produced_by, shown.columns], [1, null, [{ name: 'id', type: 'integer' }, { name: 'at', type: 'timestamp' }]])
  } finally {
    rmSync(join(dir, 'cairn.yaml'), { force: true })
  }
})

test('export streams: a reader that stops after a few lines ends it quietly, exit 0', async () => {
  await seed('big', `SELECT i::BIGINT AS id, 'row ' || i AS label, TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL (i) SECOND AS at FROM range(300000) t(i)`)
  const child = spawn(process.execPath, [MAIN, 'datasets', 'export', 'big'], { cwd: dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  let head = ''
  await new Promise<void>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      head += d
      if (head.split('\n').length > 3) {
        child.stdout.destroy()
        resolve()
      }
    })
  })
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)))
  assert.equal(head.split('\n').slice(0, 3).join('\n'), 'id,label,at\n0,row 0,2026-01-01T00:00:00.000Z\n1,row 1,2026-01-01T00:00:01.000Z')
  assert.equal(code, 0, stderr)
  assert.equal(stderr, '')

  // The whole of it, through `head` in a shell pipeline.
  const piped = await runCommand('/bin/sh', ['-c', `{ "${process.execPath}" "${MAIN}" datasets export big --format jsonl; echo "export exited $?" >&2; } | head -n 2`], { cwd: dir, env: env() })
  assert.equal(piped.stdout, '{"id":0,"label":"row 0","at":"2026-01-01T00:00:00.000Z"}\n{"id":1,"label":"row 1","at":"2026-01-01T00:00:01.000Z"}\n')
  assert.equal(piped.stderr, 'export exited 0\n')
})
