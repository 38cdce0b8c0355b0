/**
 * What an Airflow user expects of the status page, in a real browser against a real engine: deep links
 * kept through login, DAG search and filters, times with their zone and a UTC/local switch, run dates
 * and duration bars in the grid, a graph view per run, a dark theme following the system, a page
 * readable at 400 px, and no literal "null" in messages.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import type { TestEngine } from '../helpers/engine.ts'
import { waitFor } from '../helpers/engine-extra.ts'
import { browserSkipReason, overflowsViewport } from '../helpers/browser.ts'
import { ARTIFACTS, PASSWORD, pageSuite } from '../helpers/page-suite.ts'

const USER = 'operator_ann'

const DAGS = {
  'etl_orders.yaml': `dag: etl_orders
description: Orders into the warehouse
owner: data-eng
tags: [etl, daily]
tasks:
  extract: { operator: shell, params: { command: [sleep, '0.3'] } }
  load: { operator: shell, depends_on: extract, params: { command: [sleep, '0.6'] } }
  report: { operator: noop, depends_on: load }
`,
  'ml_churn.yaml': `dag: ml_churn
description: Churn features
owner: ml-platform
tags: [ml]
paused: true
params:
  zeta: { type: string, default: z }
  alpha: { type: integer, default: 1 }
  b: { type: boolean, default: false }
tasks:
  fail_me: { operator: shell, params: { command: [sh, -c, 'exit 3'] } }
`,
}

const skip = browserSkipReason()

describe('status page features', { skip }, () => {
  const suite = pageSuite()
  let engine: TestEngine
  let base: string
  let page: Page
  let okRun: string

  after(() => suite.stop())

  before(async () => {
    engine = await suite.engine({ dags: DAGS, inProcessWorkers: 1 })
    await waitFor('the DAG files to load', async () => {
      const { rows } = await engine.db.query('SELECT dag_id FROM cairn.dag WHERE version_id IS NOT NULL')
      return rows.length === 2 || undefined
    })
    okRun = await engine.trigger('etl_orders')
    assert.equal(await engine.waitForRun(okRun), 'success')
    assert.equal(await engine.waitForRun(await engine.trigger('ml_churn')), 'failed')
    // The page logs in in the first test, through a deep link.
    ;({ page, base } = await suite.open({ db: engine.db, user: USER, role: 'operator', web: { followPollMs: 250 }, console: false, browser: { timezoneId: 'Europe/Berlin' } }))
  })

  test('a deep link survives the login page', async () => {
    await page.goto(`${base}/#/runs/${encodeURIComponent(okRun)}?task=load`)
    await page.waitForSelector('#login-form')
    await page.fill('#username', USER)
    await page.fill('#password', PASSWORD)
    await page.click('button[type=submit]')
    await page.waitForSelector('#task-detail:not([hidden]) h2:text("load")')
    assert.match(page.url(), /#\/runs\/.*\?task=load$/)
  })

  test('the DAG list filters by text, tag, owner and state, and keeps the filter in the URL', async () => {
    await page.goto(`${base}/#/`)
    await page.waitForSelector('#dag-table tr[data-dag="ml_churn"]')
    const shown = () => page.locator('#dag-table tr[data-dag]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-dag')))
    await page.fill('#dag-search', 'warehouse')
    assert.deepEqual(await shown(), ['etl_orders'])
    assert.match(page.url(), /\?q=warehouse$/)
    await page.fill('#dag-search', '')
    await page.selectOption('#dag-owner', 'ml-platform')
    assert.deepEqual(await shown(), ['ml_churn'])
    await page.selectOption('#dag-owner', '')
    await page.selectOption('#dag-state', 'failed')
    assert.deepEqual(await shown(), ['ml_churn'])
    await page.selectOption('#dag-state', 'paused')
    assert.deepEqual(await shown(), ['ml_churn'])
    await page.selectOption('#dag-state', '')
    await page.click('#dag-table tr[data-dag="etl_orders"] button.tag:text("daily")')
    assert.deepEqual(await shown(), ['etl_orders'])
    assert.equal(await page.inputValue('#dag-tag'), 'daily')
    await page.fill('#dag-search', 'nothing-like-this')
    await page.waitForSelector('#no-match')
    // The filter is in the URL: a reload shows the same narrowed list.
    await page.fill('#dag-search', 'orders')
    await page.reload()
    await page.waitForSelector('#dag-table tr[data-dag="etl_orders"]')
    assert.deepEqual(await shown(), ['etl_orders'])
    assert.equal(await page.inputValue('#dag-search'), 'orders')
  })

  test('times carry their zone, and the switch shows them in UTC', async () => {
    await page.goto(`${base}/#/runs/${encodeURIComponent(okRun)}`)
    await page.waitForSelector('#run-state [data-state="success"]')
    const meta = async () => (await page.textContent('.page-head .meta')) ?? ''
    assert.match(await meta(), /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (CET|CEST|GMT\+1|GMT\+2)/)
    await page.click('#zone-toggle')
    await page.waitForFunction(() => /UTC/.test((globalThis as any).document.querySelector('.page-head .meta')?.textContent ?? ''))
    const { rows } = await engine.db.query<{ queued_at: Date }>('SELECT queued_at FROM cairn.run WHERE run_id = $1', [okRun])
    const utc = rows[0]!.queued_at.toISOString().slice(0, 19).replace('T', ' ')
    assert.ok((await meta()).includes(`queued ${utc} UTC`), await meta())
    assert.match((await page.textContent('#zone-toggle')) ?? '', /UTC/)
    // The choice is kept.
    await page.reload()
    await page.waitForSelector('#run-state [data-state="success"]')
    assert.ok((await meta()).includes(`queued ${utc} UTC`))
    await page.click('#zone-toggle')
  })

  test('the grid shows each run with its date and a duration bar', async () => {
    await page.goto(`${base}/#/dags/etl_orders`)
    const bar = page.locator(`#grid .dur-bar[data-run="${okRun}"]`)
    await bar.waitFor()
    const ms = Number(await bar.getAttribute('data-ms'))
    assert.ok(ms >= 900, `run took ${ms} ms`)
    assert.ok(((await bar.boundingBox())?.height ?? 0) > 10)
    assert.match((await page.textContent('#grid .run-date')) ?? '', /^\d\d-\d\d \d\d:\d\d$/)
  })

  test('a run can be seen as a graph with its task states', async () => {
    await page.goto(`${base}/#/runs/${encodeURIComponent(okRun)}`)
    await page.click('#run-view-graph')
    await page.waitForSelector('#run-graph svg.dag-graph g.node[data-task="report"][data-state="success"]')
    assert.equal(await page.locator('#run-graph svg.dag-graph path.edge').count(), 2)
    assert.match(page.url(), /view=graph/)
    await page.click('#run-graph g.node[data-task="load"]')
    await page.waitForSelector('#task-detail:not([hidden]) h2:text("load")')
    await page.click('#run-view-timeline')
    await page.waitForSelector('svg.gantt rect.gantt-bar[data-task="load"]')
  })

  test('the trigger form lists params in the order of the file', async () => {
    await page.goto(`${base}/#/dags/ml_churn`)
    await page.waitForSelector('#trigger-form [data-param]')
    const order = await page.locator('#trigger-form [data-param]').evaluateAll((els) => els.map((el) => el.getAttribute('data-param')))
    assert.deepEqual(order, ['zeta', 'alpha', 'b'])
    const dag = await (await page.request.get(`${base}/api/v1/dags/ml_churn`)).json()
    assert.deepEqual(Object.keys(dag.params), ['zeta', 'alpha', 'b'])
  })

  test('error messages end where they end: no literal "null" after them', async () => {
    await page.fill('#trigger-logical-date', 'not a date')
    await page.click('#trigger-submit')
    await page.waitForSelector('.notice.error:not([hidden])')
    const text = (await page.textContent('.notice.error')) ?? ''
    assert.match(text, /not a date/)
    assert.doesNotMatch(text, /null/)
  })

  test('failed tasks show their message without a literal "null"', async () => {
    await page.goto(`${base}/#/dags/ml_churn`)
    await page.click('#grid a.cell[data-task="fail_me"]')
    await page.waitForSelector('#task-detail:not([hidden]) .task-message')
    await page.waitForSelector('#log-box .log-tail[data-ended]')
    const text = (await page.textContent('#view')) ?? ''
    assert.doesNotMatch(text, /\bnull\b/)
  })

  test('the page follows a dark system theme', async () => {
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.goto(`${base}/#/`)
    await page.waitForSelector('#dag-table tr[data-dag]')
    const background: string = await page.evaluate(() => (globalThis as any).getComputedStyle((globalThis as any).document.body).backgroundColor)
    const [r, g, b] = background.match(/\d+/g)!.map(Number)
    const luminance = (0.2126 * r! + 0.7152 * g! + 0.0722 * b!) / 255
    assert.ok(luminance < 0.2, `background luminance ${luminance}`)
    const card = await page.evaluate(() => (globalThis as any).getComputedStyle((globalThis as any).document.querySelector('table.list')).backgroundColor)
    assert.notEqual(card, 'rgb(255, 255, 255)')
    await page.screenshot({ path: join(ARTIFACTS, 'features-dark-list.png'), fullPage: true })
    await page.goto(`${base}/#/dags/etl_orders`)
    await page.locator(`#grid .dur-bar[data-run="${okRun}"]`).waitFor()
    await page.screenshot({ path: join(ARTIFACTS, 'features-dark-dag.png'), fullPage: true })
    await page.emulateMedia({ colorScheme: 'light' })
  })

  test('the pages are readable at 400 px: nothing wider than the screen', async () => {
    await page.setViewportSize({ width: 400, height: 800 })
    for (const hash of ['#/', '#/dags/etl_orders', `#/runs/${encodeURIComponent(okRun)}?task=load`]) {
      await page.goto(`${base}/${hash}`)
      await page.waitForSelector('#view h1')
      await page.waitForTimeout(300)
      const overflow = await overflowsViewport(page)
      await page.screenshot({ path: join(ARTIFACTS, `features-400-${hash.split('/')[1] || 'list'}.png`), fullPage: true })
      assert.equal(overflow, undefined, hash)
    }
    await page.setViewportSize({ width: 1400, height: 900 })
    assert.deepEqual(suite.pageErrors, [])
  })
})
