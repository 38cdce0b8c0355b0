/**
 * A file that declares a DAG id another file owns: the import error is shown on the page of the DAG whose
 * id it claims and on the page of the DAG whose file it is (which keeps running its last good version).
 * In a real browser (Chromium through playwright-core) against a real engine. Without Chromium on PATH
 * the test is skipped with the reason printed, except under CI=true, where it fails.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { browserSkipReason, launchBrowser } from '../helpers/browser.ts'
import { startTestEngine } from '../helpers/engine.ts'
import { waitFor } from '../helpers/engine-extra.ts'
import { testLogger } from '../helpers/postgres.ts'
import { startTestWeb } from '../helpers/web-client.ts'
import { createUser } from '../../engine/web/auth/users.ts'

const PASSWORD = 'correct horse battery'
const dag = (id: string, description: string): string => `dag: ${id}\ndescription: ${description}\ntasks:\n  a: { operator: noop }\n`

const skip = browserSkipReason()

test('a duplicate DAG id shows on both DAG pages', { skip }, async (t) => {
  const engine = await startTestEngine(t, { dags: { 'dup_a.yaml': dag('dup_a', 'first'), 'dup_b.yaml': dag('dup_b', 'second') } })
  await waitFor('both DAGs to load', async () => (await engine.db.query('SELECT 1 FROM cairn.dag WHERE version_id IS NOT NULL')).rows.length === 2 || undefined)
  engine.writeDag('dup_b.yaml', dag('dup_a', 'now claims dup_a'))
  await waitFor('the duplicate to be an import error', async () => (await engine.db.query(`SELECT 1 FROM cairn.import_error WHERE file LIKE '%dup_b.yaml'`)).rows.length === 1 || undefined)

  const { app, base } = await startTestWeb({ db: engine.db, log: testLogger() })
  t.after(() => app.close())
  assert.ok(await createUser(engine.db, { username: 'viewer', role: 'viewer', password: PASSWORD }))
  const { context, close } = await launchBrowser()
  t.after(close)
  context.setDefaultTimeout(20_000)
  const page = context.pages()[0] ?? (await context.newPage())
  const pageErrors: string[] = []
  page.on('pageerror', (error) => pageErrors.push(error.message))

  await page.goto(base + '/')
  await page.fill('#username', 'viewer')
  await page.fill('#password', PASSWORD)
  await page.click('button[type=submit]')
  await page.waitForSelector('#dag-table tr[data-dag="dup_a"]')
  for (const id of ['dup_a', 'dup_b']) {
    await page.goto(`${base}/#/dags/${id}`)
    await page.waitForSelector('#dag-import-errors .import-error[data-file$="dup_b.yaml"]')
    assert.match(await page.textContent('#dag-import-errors') ?? '', /dup_b\.yaml:1:6: error DUPLICATE_DAG_ID: DAG "dup_a" is already declared in dags\/dup_a\.yaml/, id)
  }
  // The DAG whose file it is keeps its last good version; the other keeps its own file.
  assert.match(await page.textContent('#dag-import-errors') ?? '', /this DAG's file; its last good version keeps running/)
  assert.deepEqual(pageErrors, [])
})
