/**
 * A file that declares a DAG id another file owns: the import error is shown on the page of the DAG whose
 * id it claims and on the page of the DAG whose file it is (which keeps running its last good version).
 * In a real browser (Chromium through playwright-core) against a real engine. Without Chromium on PATH
 * the test is skipped with the reason printed, except under CI=true, where it fails.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { browserSkipReason } from '../helpers/browser.ts'
import { waitFor } from '../helpers/engine-extra.ts'
import { pageSuite } from '../helpers/page-suite.ts'

const dag = (id: string, description: string): string => `dag: ${id}\ndescription: ${description}\ntasks:\n  a: { operator: noop }\n`

const skip = browserSkipReason()

test('a duplicate DAG id shows on both DAG pages', { skip }, async (t) => {
  const suite = pageSuite()
  t.after(() => suite.stop())
  const engine = await suite.engine({ dags: { 'dup_a.yaml': dag('dup_a', 'first'), 'dup_b.yaml': dag('dup_b', 'second') } })
  await waitFor('both DAGs to load', async () => (await engine.db.query('SELECT 1 FROM cairn.dag WHERE version_id IS NOT NULL')).rows.length === 2 || undefined)
  engine.writeDag('dup_b.yaml', dag('dup_a', 'now claims dup_a'))
  await waitFor('the duplicate to be an import error', async () => (await engine.db.query(`SELECT 1 FROM cairn.import_error WHERE file LIKE '%dup_b.yaml'`)).rows.length === 1 || undefined)

  const { page, base } = await suite.open({ db: engine.db, user: 'viewer', at: '/', console: false })
  await page.waitForSelector('#dag-table tr[data-dag="dup_a"]')
  for (const id of ['dup_a', 'dup_b']) {
    await page.goto(`${base}/#/dags/${id}`)
    await page.waitForSelector('#dag-import-errors .import-error[data-file$="dup_b.yaml"]')
    assert.match(await page.textContent('#dag-import-errors') ?? '', /dup_b\.yaml:1:6: error DUPLICATE_DAG_ID: DAG "dup_a" is already declared in dags\/dup_a\.yaml/, id)
  }
  // The DAG whose file it is keeps its last good version; the other keeps its own file.
  assert.match(await page.textContent('#dag-import-errors') ?? '', /this DAG's file; its last good version keeps running/)
  assert.deepEqual(suite.pageErrors, [])
})
