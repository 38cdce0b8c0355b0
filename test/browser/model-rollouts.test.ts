/**
 * The rollout timelines of the Models view in a real browser (headless Chromium) against a real web
 * server and database, with rollouts recorded by the rollout service as `serve.rollout` records
 * them: newest first, each with its steps in order (share, the canary's figures in the step's
 * window, the decision) and the outcome; a failed step's figure over its limit marked; a running
 * step shown as running; the task that ran it linked; a reason that looks like HTML shown as text;
 * readable at 400 px. The page follows a rollout as it goes on.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { createModels } from '../../engine/models/registry.ts'
import { createRollouts } from '../../engine/models/rollouts.ts'
import type { RolloutPlan } from '../../engine/models/rollout-plan.ts'
import { browserSkipReason, overflowsViewport } from '../helpers/browser.ts'
import { ARTIFACTS, HOSTILE, pageSuite } from '../helpers/page-suite.ts'

const RUN = 'churn_model__manual__20260105T000000Z'
const skip = browserSkipReason()
const plan: RolloutPlan = { steps: [10, 50, 100], stepDurationMs: 120_000, analysis: { minRequests: 100, maxErrorRate: 0.01, maxP99LatencyMs: 50 }, onFailure: 'rollback' }
const at = (minutes: number) => new Date(Date.UTC(2026, 0, 5, 10, minutes))

describe('model rollout timelines', { skip }, () => {
  const suite = pageSuite()
  let base: string
  let page: Page
  let rollouts: ReturnType<typeof createRollouts>

  after(() => suite.stop())

  before(async () => {
    const { db, dir } = await suite.database()
    const file = join(dir, 'model.onnx')
    writeFileSync(file, 'not really onnx')
    const models = createModels({ db, dir, producer: { kind: 'actor', actor: 'alice' } })
    for (let i = 0; i < 4; i++) await models.register({ name: 'churn', file })
    await models.stage('churn', 1, 'production', { user: 'alice' })
    rollouts = createRollouts({ db, producer: { kind: 'actor', actor: 'alice' } })
    // v2: promoted after three passed steps, run by a task.
    const r2 = await rollouts.begin('churn', 2, plan, at(0))
    await db.query(`UPDATE cairn.model_rollout SET run_id = $1, task_id = 'rollout' WHERE id = $2`, [RUN, r2.id])
    const figures = [{ requests: 140, errors: 0, errorRate: 0, p99Ms: 12.345 }, { requests: 700, errors: 3, errorRate: 3 / 700, p99Ms: 14 }, { requests: 1400, errors: 7, errorRate: 0.005, p99Ms: 15.5 }]
    for (const [i, percent] of [10, 50, 100].entries()) {
      await rollouts.startStep(r2, i, percent, at(i * 3))
      await rollouts.passStep(r2, i, figures[i]!, at(i * 3 + 2))
    }
    await rollouts.promote(r2, at(9))
    // v3: its first step failed on the error rate (the reason carries hostile text), rolled back.
    const r3 = await rollouts.begin('churn', 3, plan, at(20))
    await rollouts.startStep(r3, 0, 10, at(20))
    await rollouts.failStep(r3, 0, { requests: 120, errors: 30, errorRate: 0.25, p99Ms: 9 }, `error rate 0.25 over the limit 0.01 ${HOSTILE}`, 'rollback', at(22))
    // v4: running, its first step passed and its second open.
    const r4 = await rollouts.begin('churn', 4, plan, at(30))
    await rollouts.startStep(r4, 0, 10, at(30))
    await rollouts.passStep(r4, 0, { requests: 150, errors: 0, errorRate: 0, p99Ms: 8 }, at(32), true)
    await rollouts.startStep(r4, 1, 50, at(32))
    ;({ page, base } = await suite.open({ db, user: 'viewer_ro', at: '/#/', web: { data: { dir }, statePollMs: 250 } }))
    await page.waitForSelector('#nav-models')
  })

  const steps = (rollout: string) =>
    page.locator(`#model-rollouts article[data-version="${rollout}"] li.rollout-step`).evaluateAll((lis) =>
      lis.map((li) => [li.getAttribute('data-percent'), li.getAttribute('data-decision'), ...['requests', 'errors', 'error-rate', 'p99'].map((f) => li.querySelector(`.fig-${f}`)?.textContent)]))

  test('rollouts newest first, each a timeline of steps with figures and decisions, then the outcome', async () => {
    await page.goto(`${base}/#/models/churn`)
    await page.waitForSelector('#model-rollouts article')
    assert.equal(await page.textContent('#model-rollouts h2'), 'Rollouts (3)')
    const order = await page.locator('#model-rollouts article').evaluateAll((as) => as.map((a) => [a.getAttribute('data-version'), a.getAttribute('data-status')]))
    assert.deepEqual(order, [['4', 'running'], ['3', 'rolled_back'], ['2', 'promoted']])
    assert.deepEqual(await steps('2'), [
      ['10', 'passed', '140', '0', '0 %', '12.35 ms'],
      ['50', 'passed', '700', '3', '0.43 %', '14 ms'],
      ['100', 'passed', '1400', '7', '0.5 %', '15.5 ms'],
    ])
    assert.match((await page.textContent('#model-rollouts article[data-version="2"] .rollout-outcome')) ?? '', /promoted v2 is production/)
    assert.match((await page.textContent('#model-rollouts article[data-version="2"] .rollout-plan')) ?? '', /steps 10 → 50 → 100 %, 2 min 0 s each · at least 100 requests, error rate ≤ 1 %, p99 ≤ 50 ms · on failure: rollback/)
    assert.match((await page.textContent('#model-rollouts article[data-version="2"] li.rollout-step[data-step="1"] .rollout-window')) ?? '', /decided after 2 min 0 s/)
    assert.equal(await page.getAttribute('#model-rollouts article[data-version="2"] a.lineage-run', 'href'), `#/runs/${RUN}?task=rollout`)
  })

  test('a failed step: its figure over the limit marked, the reason as text, rolled back', async () => {
    assert.deepEqual(await steps('3'), [['10', 'failed', '120', '30', '25 %', '9 ms']])
    assert.equal(await page.locator('#model-rollouts article[data-version="3"] .fig-error-rate.over').count(), 1)
    assert.equal(await page.locator('#model-rollouts article[data-version="3"] .fig-p99.over').count(), 0)
    assert.equal(await page.textContent('#model-rollouts article[data-version="3"] .rollout-decision-text'), `✗ failed: error rate 0.25 over the limit 0.01 ${HOSTILE}`)
    assert.match((await page.textContent('#model-rollouts article[data-version="3"] .rollout-outcome')) ?? '', /rolled back all traffic back on production, v3 a candidate again$/)
    assert.equal(await page.locator('#view img').count(), 0)
    assert.equal(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned), undefined)
  })

  test('a running rollout is followed as it goes on', async () => {
    assert.deepEqual(await steps('4'), [['10', 'passed', '150', '0', '0 %', '8 ms'], ['50', 'running', '—', '—', '—', '—']])
    assert.match((await page.textContent('#model-rollouts article[data-version="4"] li.rollout-step[data-step="1"] .rollout-window')) ?? '', /decided after 2 min 0 s \(waited for 100 requests\)$/)
    assert.equal(await page.locator('#model-rollouts article[data-version="2"] .waited').count(), 0)
    const [r4] = (await rollouts.history('churn')).filter((r) => r.version === 4)
    await rollouts.passStep(r4!, 1, { requests: 800, errors: 0, errorRate: 0, p99Ms: 9 }, at(34))
    await rollouts.startStep(r4!, 2, 100, at(34))
    await rollouts.passStep(r4!, 2, { requests: 1600, errors: 0, errorRate: 0, p99Ms: 9 }, at(36))
    await rollouts.promote(r4!, at(36))
    // The view refreshes by itself.
    await page.waitForSelector('#model-rollouts article[data-version="4"][data-status="promoted"]')
    assert.deepEqual((await steps('4')).map((s) => s.slice(0, 2)), [['10', 'passed'], ['50', 'passed'], ['100', 'passed']])
    assert.match((await page.textContent('#model-production')) ?? '', /v4 · 100 %/)
  })

  test('readable at 400 px', async () => {
    await page.setViewportSize({ width: 400, height: 900 })
    await page.goto(`${base}/#/models/churn`)
    await page.waitForSelector('#model-rollouts article')
    const overflow = await overflowsViewport(page, '.table-scroll')
    await page.screenshot({ path: join(ARTIFACTS, 'model-rollouts-400.png'), fullPage: true })
    assert.equal(overflow, undefined)
    await page.setViewportSize({ width: 1400, height: 900 })
    await page.goto(`${base}/#/models/churn`)
    await page.waitForSelector('#model-rollouts article')
    await page.locator('#model-rollouts').screenshot({ path: join(ARTIFACTS, 'model-rollouts.png') })
    assert.deepEqual(suite.pageErrors, [])
  })
})
