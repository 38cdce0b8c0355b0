/**
 * The run page of an `evaluate.drift` task, in a real browser against a real engine: the real operator
 * compares a shifted dataset with a reference version, and the page shows the verdict, a row per feature
 * with its statistics (the drifted one marked) and a histogram per feature with both samples' bars; a
 * category that looks like HTML stays text. A task whose model has no production version yet
 * (if_no_reference: drifted) shows its reason instead of an empty table, and a task reading the online
 * store names the view, its definition and the window.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import type { TestEngine } from '../helpers/engine.ts'
import { waitFor } from '../helpers/engine-extra.ts'
import { browserSkipReason } from '../helpers/browser.ts'
import { ARTIFACTS, HOSTILE, pageSuite } from '../helpers/page-suite.ts'
import { seedVersion } from '../helpers/datasets.ts'
import { createDatasets } from '../../engine/data/datasets.ts'
import { writeOnlineRows } from '../../engine/store/feature-online.ts'

const skip = browserSkipReason()

describe('a drift task on the run page', { skip }, () => {
  const suite = pageSuite()
  let engine: TestEngine
  let base: string
  let page: Page
  let runId: string

  after(() => suite.stop())

  before(async () => {
    engine = await suite.engine({
      dags: {
        'drift.yaml': `dag: drift
tasks:
  drift:
    operator: evaluate.drift
    params: { dataset: scores, reference: training, bins: 4 }
  first_model:
    operator: evaluate.drift
    params: { dataset: scores, model: "models:/churn/production", if_no_reference: drifted }
  online:
    operator: evaluate.drift
    params: { online: { feature_view: activity, window: 7d }, reference: online_training, bins: 4 }
`,
        'features/activity.yaml': `feature_view: activity
entity: user_id
source: events
timestamp: ts
ttl: 30d
online: true
features:
  spend: { agg: sum, column: amount }
`,
      },
      inProcessWorkers: 1,
    })
    const datasets = createDatasets({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
    const hostile = HOSTILE.replaceAll("'", "''")
    await seedVersion(datasets, 'training', `SELECT (i % 100)::DOUBLE AS amount, CASE WHEN i % 2 = 0 THEN 'DE' ELSE '${hostile}' END AS country FROM range(400) t(i)`)
    // Amounts shifted up by 50; countries as before: only amount drifts.
    await seedVersion(datasets, 'scores', `SELECT (50 + i % 100)::DOUBLE AS amount, CASE WHEN i % 2 = 0 THEN 'DE' ELSE '${hostile}' END AS country FROM range(200) t(i)`)
    await seedVersion(datasets, 'events', `SELECT 'u1' AS user_id, TIMESTAMPTZ '2026-01-01 00:00:00+00' AS ts, 1.0::DOUBLE AS amount`)
    await seedVersion(datasets, 'online_training', `SELECT (i % 10)::DOUBLE AS activity__spend FROM range(100) t(i)`)
    await waitFor('the DAG to load', async () => (await engine.db.query(`SELECT 1 FROM cairn.dag WHERE dag_id = 'drift' AND version_id IS NOT NULL`)).rows.length === 1 || undefined)
    await waitFor('the feature view to load', async () => (await engine.db.query(`SELECT 1 FROM cairn.feature_view WHERE name = 'activity'`)).rows.length === 1 || undefined)
    // 12 online rows materialized an hour before the run's end (its trigger time).
    const at = new Date(Date.now() - 3_600_000)
    await writeOnlineRows(engine.db, 'activity', 1, at, Array.from({ length: 12 }, (_, i) => ({ key: JSON.stringify([`u${i}`]), entity: { user_id: `u${i}` }, features: { spend: i % 10 } })))
    runId = await engine.trigger('drift')
    assert.equal(await engine.waitForRun(runId, 120_000), 'success')
    ;({ page, base } = await suite.open({ db: engine.db, user: 'viewer_drift', at: `/#/runs/${encodeURIComponent(runId)}?task=drift`, web: { data: { dir: engine.data.dir } }, timeoutMs: 30_000 }))
  })

  test('the verdict, a row per feature with its figures, and both samples in each histogram', async () => {
    await page.waitForSelector('#drift-report[data-drifted="true"]')
    assert.equal(await page.textContent('#drift-verdict'), 'drifted')
    assert.match((await page.textContent('.drift-verdict'))!, /scores@1 against training@1/)
    const rows = await page.locator('#drift-table tbody tr').evaluateAll((trs) => trs.map((r) => [r.getAttribute('data-feature'), r.getAttribute('data-drifted'), r.querySelector('.drift-figures')?.textContent]))
    assert.deepEqual(rows.map((r) => r.slice(0, 2)), [['amount', 'true'], ['country', 'false']])
    assert.match(rows[0]![2]!, /^PSI [\d.]+, KS 0\.5 \(p /)
    assert.match(rows[1]![2]!, /^chi² 0 \(1 dof\), p 1$/)
    // amount: 4 bins of the reference's quartiles, each with a reference and a current bar.
    const bins = await page.locator('.drift-histogram[data-feature="amount"] .bin').evaluateAll((els) => els.map((e) => [e.querySelector('.bin-label')?.textContent, (e.querySelector('.bar.ref') as any).style.height, (e.querySelector('.bar.cur') as any).style.height]))
    assert.deepEqual(bins.map((b) => b[0]), ['< 25', '25–50', '50–75', '≥ 75'])
    // Reference a quarter in each bin; current none below 50, a quarter in 50-75, three quarters above.
    assert.deepEqual(bins.map((b) => [b[1], b[2]]), [['33.3%', '0%'], ['33.3%', '0%'], ['33.3%', '33.3%'], ['33.3%', '100%']])
    const categories = await page.locator('.drift-histogram[data-feature="country"] .bin-label').allTextContents()
    assert.deepEqual(categories.sort(), ['DE', HOSTILE].sort())
    assert.equal(await page.evaluate(() => (globalThis as any).__pwned), undefined)
    assert.equal(await page.textContent('#drift-reason'), '1 of 2 features drifted: amount')
    await page.screenshot({ path: join(ARTIFACTS, 'drift-report.png'), fullPage: true })
    assert.deepEqual(suite.pageErrors, [])
  })

  test('no model version to compare with: the reason instead of an empty table', async () => {
    await page.goto(`${base}/#/runs/${encodeURIComponent(runId)}?task=first_model`)
    await page.waitForSelector('#drift-reason')
    assert.equal(await page.textContent('#drift-reason'), 'no production version of model churn to compare with')
    assert.equal(await page.textContent('#drift-verdict'), 'drifted')
    assert.match((await page.textContent('.drift-verdict'))!, /no reference to compare with/)
    assert.equal(await page.locator('#drift-table').count(), 0)
    assert.equal(await page.locator('.drift-histogram').count(), 0)
    await page.screenshot({ path: join(ARTIFACTS, 'drift-report-no-reference.png'), fullPage: true })
    assert.deepEqual(suite.pageErrors, [])
  })

  test('the online side: the view, its definition, the rows and the window', async () => {
    await page.goto(`${base}/#/runs/${encodeURIComponent(runId)}?task=online`)
    await page.waitForSelector('#drift-table .drift-row[data-feature="activity__spend"]')
    assert.match((await page.textContent('.drift-verdict'))!, /online activity \(definition 1, 12 rows in \d{4}-\d\d-\d\dT[\d:.]+Z – \d{4}-\d\d-\d\dT[\d:.]+Z\) against online_training@1/)
    assert.equal(await page.textContent('#drift-reason'), 'no feature drifted (1 compared)')
    assert.deepEqual(suite.pageErrors, [])
  })
})
