/**
 * Two files declaring one DAG id: the file that owns the DAG keeps it, the other file is an import
 * error (in the database, the API and `cairn validate`), and no change to the other file can remove
 * or alter the DAG. Driven through the scheduler's DAG sync against a real database.
 */
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDagSync } from '../../engine/scheduler/dag-sync.ts'
import type { DagSync } from '../../engine/scheduler/dag-sync.ts'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { validatePaths } from '../../engine/dag/validate-folder.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'
import { rawRequest, startTestWeb } from '../helpers/web-client.ts'

const HELLO = readFileSync(new URL('../../dags/hello.yaml', import.meta.url), 'utf8')

interface Setup {
  db: Db
  dir: string
  sync: DagSync
  write(name: string, text: string, ageSeconds?: number): void
  dag(id: string): Promise<{ file: string | null; removed: boolean; description: string | undefined } | undefined>
  errors(): Promise<{ file: string; dag_id: string | null; codes: string[] }[]>
}

async function setup(t: TestContext): Promise<Setup> {
  const log = testLogger()
  const db = createDb(await createTestDatabase(t), { log, max: 4 })
  await migrate(db, log)
  const dir = mkdtempSync(join(tmpdir(), 'cairn-dup-test-'))
  mkdirSync(join(dir, 'dags'))
  t.after(async () => {
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const now = Date.now() / 1000
  return {
    db,
    dir,
    sync: createDagSync({ folder: join(dir, 'dags'), cwd: dir, names: undefined, log }),
    write(name, text, ageSeconds = 0) {
      const path = join(dir, 'dags', name)
      writeFileSync(path, text)
      // Explicit times: which file declared an id first must not depend on how fast the test runs.
      utimesSync(path, now - ageSeconds, now - ageSeconds)
    },
    async dag(id) {
      const { rows } = await db.query<{ file: string | null; removed: boolean; spec: { description?: string } }>(
        'SELECT d.file, d.removed, v.spec FROM cairn.dag d JOIN cairn.dag_version v ON v.version_id = d.version_id WHERE d.dag_id = $1',
        [id],
      )
      return rows[0] && { file: rows[0].file, removed: rows[0].removed, description: rows[0].spec.description }
    },
    async errors() {
      const { rows } = await db.query<{ file: string; dag_id: string | null; diagnostics: { code: string }[] }>('SELECT file, dag_id, diagnostics FROM cairn.import_error ORDER BY file')
      return rows.map((r) => ({ file: r.file, dag_id: r.dag_id, codes: r.diagnostics.map((d) => d.code) }))
    },
  }
}

const described = (text: string, description: string): string => text.replace(/^description: .*$/m, `description: ${description}`)

test('a copy of a DAG file is an import error on the copy; the original keeps its DAG, also after the copy is edited or deleted', async (t) => {
  const s = await setup(t)
  s.write('hello.yaml', HELLO, 3600)
  await s.sync.sync(s.db)
  const original = await s.dag('hello')
  assert.deepEqual(original, { file: 'dags/hello.yaml', removed: false, description: 'Says hello every minute and passes a value downstream' })

  // The copy claims the id later: it is the duplicate, whatever its name sorts like.
  s.write('hello_copy.yaml', described(HELLO, 'the copy'))
  const pass = await s.sync.sync(s.db)
  assert.deepEqual(pass.changed, [])
  assert.equal(pass.errors, 1)
  assert.deepEqual(await s.dag('hello'), original)
  assert.deepEqual(await s.errors(), [{ file: 'dags/hello_copy.yaml', dag_id: 'hello', codes: ['DUPLICATE_DAG_ID'] }])
  const { rows } = await s.db.query<{ diagnostics: { message: string; line: number; column: number }[] }>('SELECT diagnostics FROM cairn.import_error')
  assert.match(rows[0]!.diagnostics[0]!.message, /DAG "hello" is already declared in dags\/hello\.yaml/)
  assert.deepEqual([rows[0]!.diagnostics[0]!.line, rows[0]!.diagnostics[0]!.column], [3, 6])

  // Editing the copy, even making it look older than the original, changes nothing.
  s.write('hello_copy.yaml', described(HELLO, 'the copy, edited'), 7200)
  await s.sync.sync(s.db)
  assert.deepEqual(await s.dag('hello'), original)
  assert.deepEqual((await s.errors()).map((e) => e.file), ['dags/hello_copy.yaml'])

  // Deleting the copy: the DAG is still there and still scheduled (not removed); the error is gone.
  unlinkSync(join(s.dir, 'dags', 'hello_copy.yaml'))
  await s.sync.sync(s.db)
  assert.deepEqual(await s.dag('hello'), original)
  assert.deepEqual(await s.errors(), [])

  // A new sync (a restarted scheduler) decides the same from the database.
  s.write('hello_copy.yaml', described(HELLO, 'the copy again'), 7200)
  const fresh = createDagSync({ folder: join(s.dir, 'dags'), cwd: s.dir, names: undefined, log: testLogger() })
  await fresh.sync(s.db)
  assert.deepEqual(await s.dag('hello'), original)
  assert.deepEqual((await s.errors()).map((e) => e.file), ['dags/hello_copy.yaml'])
})

test("a broken owner keeps its DAG (last good version) against a valid duplicate; a clean change of the owner's id hands it over", async (t) => {
  const s = await setup(t)
  s.write('hello.yaml', HELLO, 3600)
  await s.sync.sync(s.db)
  const original = await s.dag('hello')

  s.write('hello.yaml', HELLO.replace('operator: noop', 'operator: nope'), 60)
  s.write('hello_copy.yaml', described(HELLO, 'the copy'))
  await s.sync.sync(s.db)
  assert.deepEqual(await s.dag('hello'), original)
  assert.deepEqual(await s.errors(), [
    { file: 'dags/hello.yaml', dag_id: 'hello', codes: ['UNKNOWN_OPERATOR'] },
    { file: 'dags/hello_copy.yaml', dag_id: 'hello', codes: ['DUPLICATE_DAG_ID'] },
  ])

  // A file that cannot even be parsed still holds its DAG.
  s.write('hello.yaml', 'dag: [unclosed\n', 30)
  await s.sync.sync(s.db)
  assert.deepEqual(await s.dag('hello'), original)
  assert.equal((await s.errors()).find((e) => e.file === 'dags/hello_copy.yaml')?.codes[0], 'DUPLICATE_DAG_ID')

  // The owner now declares another DAG, cleanly: the copy becomes hello's file, without an error.
  s.write('hello.yaml', HELLO.replace('dag: hello', 'dag: hello_two'), 10)
  const pass = await s.sync.sync(s.db)
  assert.deepEqual(pass.changed.sort(), ['hello', 'hello_two'])
  assert.deepEqual(await s.dag('hello'), { file: 'dags/hello_copy.yaml', removed: false, description: 'the copy' })
  assert.equal((await s.dag('hello_two'))?.file, 'dags/hello.yaml')
  assert.deepEqual(await s.errors(), [])
})

test('on a fresh database the file that declared the id first (modification time, then path) keeps it', async (t) => {
  const s = await setup(t)
  s.write('a.yaml', described(HELLO, 'newer'), 10)
  s.write('b.yaml', described(HELLO, 'older'), 1000)
  s.write('c.yaml', described(HELLO, 'same time as b'), 1000)
  await s.sync.sync(s.db)
  assert.deepEqual(await s.dag('hello'), { file: 'dags/b.yaml', removed: false, description: 'older' })
  assert.deepEqual((await s.errors()).map((e) => [e.file, e.codes]), [
    ['dags/a.yaml', ['DUPLICATE_DAG_ID']],
    ['dags/c.yaml', ['DUPLICATE_DAG_ID']],
  ])

  // cairn validate agrees: the later files are the duplicates, each naming the one that keeps the id.
  const validation = await validatePaths([join(s.dir, 'dags')], { cwd: s.dir })
  assert.deepEqual(
    validation.diagnostics.filter((d) => d.code === 'DUPLICATE_DAG_ID').map((d) => [d.file, d.line, d.column, d.message]),
    [
      ['dags/a.yaml', 3, 6, 'DAG "hello" is already declared in dags/b.yaml'],
      ['dags/c.yaml', 3, 6, 'DAG "hello" is already declared in dags/b.yaml'],
    ],
  )
})

test('a DAG whose file now declares a taken id keeps its last good version; the error shows on both DAGs in the API', async (t) => {
  const s = await setup(t)
  s.write('hello.yaml', HELLO, 3600)
  s.write('hello_copy.yaml', HELLO.replace('dag: hello', 'dag: hello_copy'), 3600)
  await s.sync.sync(s.db)
  const copy = await s.dag('hello_copy')
  assert.equal(copy?.file, 'dags/hello_copy.yaml')

  s.write('hello_copy.yaml', described(HELLO, 'now claims hello'))
  await s.sync.sync(s.db)
  assert.deepEqual(await s.dag('hello_copy'), copy)
  assert.equal((await s.dag('hello'))?.file, 'dags/hello.yaml')

  const { app, base } = await startTestWeb({ db: s.db, log: testLogger() })
  t.after(() => app.close())
  const token = (await createToken(s.db, { name: 'viewer-token', role: 'viewer' }))!.token
  const get = async (path: string): Promise<any> => {
    const response = await rawRequest(base, 'GET', path, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(response.status, 200, response.body)
    return response.json()
  }
  const list = await get('/api/v1/dags')
  assert.deepEqual(list.import_errors.map((e: any) => [e.file, e.dag_id, e.diagnostics.map((d: any) => d.code)]), [['dags/hello_copy.yaml', 'hello', ['DUPLICATE_DAG_ID']]])
  const counts = Object.fromEntries(list.dags.map((d: any) => [d.dag_id, d.import_errors]))
  assert.deepEqual(counts, { hello: 1, hello_copy: 1 })
  for (const id of ['hello', 'hello_copy']) {
    const dag = await get(`/api/v1/dags/${id}`)
    assert.deepEqual(dag.import_errors.map((e: any) => [e.file, e.diagnostics[0].code]), [['dags/hello_copy.yaml', 'DUPLICATE_DAG_ID']], id)
  }
  assert.equal((await get('/api/v1/dags/hello')).file, 'dags/hello.yaml')
})

test('copying a file keeps byte-identical content apart too', async (t) => {
  const s = await setup(t)
  s.write('hello.yaml', HELLO, 3600)
  await s.sync.sync(s.db)
  copyFileSync(join(s.dir, 'dags', 'hello.yaml'), join(s.dir, 'dags', 'a_copy.yaml'))
  await s.sync.sync(s.db)
  assert.equal((await s.dag('hello'))?.file, 'dags/hello.yaml')
  assert.deepEqual((await s.errors()).map((e) => e.file), ['dags/a_copy.yaml'])
  unlinkSync(join(s.dir, 'dags', 'a_copy.yaml'))
  await s.sync.sync(s.db)
  assert.deepEqual(await s.dag('hello'), { file: 'dags/hello.yaml', removed: false, description: 'Says hello every minute and passes a value downstream' })
})
