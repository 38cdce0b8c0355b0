/**
 * The Models view of the status page in a real browser (headless Chromium) against a real web server
 * and database, with versions registered through the registry and its store as `train` and the CLI
 * leave them: the list with production and canary versions; one model's versions with stage,
 * traffic share, metrics, created time and lineage (run and task, training set, feature views),
 * linked to the Runs and Datasets views; the chosen version in detail; the audit log of stage changes
 * with who made each; values that look like HTML shown as text; readable at 400 px.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { createDatasets } from '../../engine/data/datasets.ts'
import { createModels } from '../../engine/models/registry.ts'
import { insertModelVersion, lockNextModelVersion } from '../../engine/store/models.ts'
import { browserSkipReason, overflowsViewport } from '../helpers/browser.ts'
import { ARTIFACTS, HOSTILE, pageSuite } from '../helpers/page-suite.ts'
import { seedVersion } from '../helpers/datasets.ts'

const RUN = 'churn_model__scheduled__20260105T000000Z'
/** A run `cairn db prune` deleted: it trained v3, whose lineage still names it. */
const PRUNED_RUN = 'churn_model__scheduled__20250105T000000Z'
const skip = browserSkipReason()

describe('models page', { skip }, () => {
  const suite = pageSuite()
  let base: string
  let page: Page

  after(() => suite.stop())

  before(async () => {
    const { db, dir } = await suite.database()
    const datasets = createDatasets({ db, dir, producer: { kind: 'actor', actor: 'seed' } })
    await seedVersion(datasets, 'churn_training', `SELECT 'u1' AS user_id, true AS churned, 7.5 AS user_activity__spend_7d`)
    const file = join(dir, 'model.onnx')
    writeFileSync(file, 'not really onnx')
    const models = createModels({ db, dir, producer: { kind: 'actor', actor: 'alice' } })
    // v1: registered by hand from a file (no lineage), then promoted by a user.
    await models.register({ name: 'churn', file, metrics: { auc: 0.79 } })
    await models.setStage('churn', 1, 'production', { user: 'alice' }, 1)
    // v2 and v3: trained by a run on the training set, as `train` with model_name records them; v2's run
    // is still there, v3's was pruned.
    await db.query(`INSERT INTO cairn.dag (dag_id, file) VALUES ('churn_model', 'churn_model.yaml')`)
    const { rows: dagVersion } = await db.query<{ version_id: string }>(`INSERT INTO cairn.dag_version (dag_id, hash, spec, source) VALUES ('churn_model', 'h', '{}'::jsonb, '') RETURNING version_id`)
    await db.query(
      `INSERT INTO cairn.run (run_id, dag_id, version_id, run_type, state, logical_date, data_interval_start, data_interval_end)
       VALUES ($1, 'churn_model', $2, 'scheduled', 'success', '2026-01-05', '2026-01-05', '2026-01-06')`,
      [RUN, dagVersion[0]!.version_id],
    )
    for (const [run, metrics] of [[RUN, { auc: 0.8123456, log_loss: 0.41 }], [PRUNED_RUN, { auc: 0.6, [HOSTILE]: HOSTILE }]] as const) {
      await db.tx(async (q) => {
        const version = await lockNextModelVersion(q, 'churn')
        await insertModelVersion(q, {
          model: 'churn', version, artifact: `_models/churn/${version}/model.onnx`, sha256: 'a'.repeat(64), metrics,
          lineage: { run, task: 'train', attempt: 2, dag_version: 4, dataset: { name: 'churn_training', version: 1 }, feature_views: [{ feature_view: 'user_activity', definition_version: 1 }] },
          features: ['user_activity__spend_7d', HOSTILE], taskKind: 'binary', runId: run, taskId: 'train', actor: { run, task: 'train' },
        })
      })
    }
    await models.setStage('churn', 2, 'canary', { run: RUN, task: 'rollout' }, 0.1)
    await models.setStage('churn', 3, 'archived', { token: HOSTILE })
    await createModels({ db, dir, producer: { kind: 'actor', actor: 'bob' } }).register({ name: 'fraud', file })
    ;({ page, base } = await suite.open({ db, user: 'viewer_mo', at: '/#/', web: { data: { dir }, statePollMs: 250 } }))
    await page.waitForSelector('#nav-models')
  })

  const cells = (selector: string) => page.locator(selector).evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)))

  test('the Models list, from the top navigation: latest, production and canary versions', async () => {
    await page.click('#nav-models')
    await page.waitForSelector('#model-table tr[data-model="fraud"]')
    assert.equal(await page.getAttribute('#nav-models', 'aria-current'), 'page')
    const rows = (await cells('#model-table tbody tr')).map((r) => r.slice(0, 4))
    assert.deepEqual(rows, [['churn', 'v3', 'v1', 'v2'], ['fraud', 'v1', '—', '—']])
    await page.click('#model-table a:text("churn")')
    await page.waitForSelector('#model-versions-table')
  })

  test("a model's versions: stage, traffic share, metrics and lineage linked to the run and the training set", async () => {
    const rows = await page.locator('#model-versions-table tbody tr').evaluateAll((trs) => trs.map((r) => [r.getAttribute('data-version'), r.getAttribute('data-stage'), r.querySelector('td.traffic')?.textContent]))
    assert.deepEqual(rows, [['3', 'archived', '—'], ['2', 'canary', '10 %'], ['1', 'production', '100 %']])
    assert.match((await page.textContent('#model-versions-table tr[data-version="2"]')) ?? '', /auc 0\.8123.*log_loss 0\.41/)
    assert.equal(await page.getAttribute('#model-versions-table tr[data-version="2"] a.lineage-run', 'href'), `#/runs/${RUN}?task=train`)
    assert.equal(await page.getAttribute('#model-versions-table tr[data-version="2"] a.lineage-dataset', 'href'), '#/datasets/churn_training?version=1')
    assert.equal(await page.textContent('#model-versions-table tr[data-version="2"] a.lineage-feature-view'), 'user_activity v1')
    assert.equal(await page.textContent('#model-versions-table tr[data-version="1"] td.lineage'), '—')
    // v3's run was pruned: named as text, marked, and not linked.
    assert.equal(await page.locator('#model-versions-table tr[data-version="3"] a.lineage-run').count(), 0)
    assert.match((await page.textContent('#model-versions-table tr[data-version="3"] .lineage-run-pruned')) ?? '', new RegExp(`^${PRUNED_RUN} / train \\(run pruned\\)$`))
    assert.match((await page.textContent('#model-production')) ?? '', /v1 · 100 %/)
    assert.match((await page.textContent('#model-canary')) ?? '', /v2 · 10 %/)
    // The newest version is shown in detail until another is chosen.
    assert.equal(await page.textContent('#model-version h2'), 'Version 3')
    await page.click('#model-versions-table a:text("v2")')
    await page.waitForFunction(() => (globalThis as any).document.querySelector('#model-version h2')?.textContent === 'Version 2')
    assert.match(page.url(), /#\/models\/churn\?version=2$/)
    assert.match((await page.textContent('#model-version-lineage')) ?? '', new RegExp(`trained by ${RUN} / train \\(attempt 2\\)DAG version 4training set churn_training@1features user_activity v1`))
    assert.deepEqual(await cells('#model-version-metrics tbody tr'), [['auc', '0.8123'], ['log_loss', '0.41']])
    await page.click('#model-version-lineage a.lineage-dataset')
    await page.waitForSelector('#dataset-version:text("v1")')
    assert.match(page.url(), /#\/datasets\/churn_training\?version=1$/)
  })

  test('the audit log: every stage change, newest first, with who made it', async () => {
    await page.goto(`${base}/#/models/churn`)
    await page.waitForSelector('#model-audit-table')
    const rows = (await cells('#model-audit-table tbody tr')).map((r) => r.slice(1))
    assert.deepEqual(rows, [
      ['v3', 'candidate → archived', `token ${HOSTILE}`],
      ['v2', 'candidate → canary (traffic 10 %)', `run ${RUN} / rollout`],
      ['v3', 'registered as candidate', `run ${PRUNED_RUN} / train`],
      ['v2', 'registered as candidate', `run ${RUN} / train`],
      ['v1', 'candidate → production (traffic 100 %)', 'user alice'],
      ['v1', 'registered as candidate', 'user alice'],
    ])
    assert.equal(await page.getAttribute('#model-audit-table tr[data-to="canary"] a.lineage-run', 'href'), `#/runs/${RUN}?task=rollout`)
  })

  test('metrics, features and actors that look like HTML are shown as text', async () => {
    await page.goto(`${base}/#/models/churn?version=3`)
    await page.waitForSelector('#model-version-metrics')
    assert.deepEqual(await cells('#model-version-metrics tbody tr'), [['auc', '0.6'], [HOSTILE, HOSTILE]])
    assert.equal(await page.textContent('#model-version-features'), `user_activity__spend_7d, ${HOSTILE}`)
    assert.equal(await page.locator('#view img').count(), 0)
    assert.equal(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned), undefined)
  })

  test('readable at 400 px', async () => {
    await page.setViewportSize({ width: 400, height: 800 })
    for (const [hash, ready] of [['#/models', '#model-table tr'], ['#/models/churn?version=2', '#model-audit-table']] as const) {
      await page.goto(`${base}/${hash}`)
      await page.waitForSelector(ready)
      const overflow = await overflowsViewport(page, '.table-scroll')
      await page.screenshot({ path: join(ARTIFACTS, `models-400-${hash.replace(/[#/?=]+/g, '-').replace(/^-|-$/g, '')}.png`), fullPage: true })
      assert.equal(overflow, undefined, hash)
    }
    await page.setViewportSize({ width: 1400, height: 900 })
    await page.goto(`${base}/#/models/churn?version=2`)
    await page.waitForSelector('#model-audit-table')
    await page.screenshot({ path: join(ARTIFACTS, 'models-churn.png'), fullPage: true })
    assert.deepEqual(suite.pageErrors, [])
  })
})
