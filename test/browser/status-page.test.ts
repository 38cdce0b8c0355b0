/**
 * The status page in a real browser (Chromium through playwright-core) against a real engine: an
 * in-process scheduler, a real `cairn worker` process and the web server on a free port. One user
 * session walks through the page: log in, the DAG list (schedule in words, last runs, import errors),
 * a DAG's graph and grid, triggering with params through the generated form (client-side and
 * server-side errors first), task states changing without a reload, a task's live log, clearing a task,
 * cancelling a run and pausing a DAG. Every step leaves a screenshot in test-artifacts/browser/.
 *
 * Without Chromium on PATH the test is skipped with the reason printed, except under CI=true, where
 * it fails.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { browserSkipReason } from '../helpers/browser.ts'
import type { TestEngine } from '../helpers/engine.ts'
import { waitFor } from '../helpers/engine-extra.ts'
import { ARTIFACTS, PASSWORD, pageSuite } from '../helpers/page-suite.ts'
import { passwordProblem } from '../../engine/web/auth/passwords.ts'

/** Text of every response the page received (checked for the canary at the end). */
const pageBodies: Promise<string>[] = []
const CANARY = `canary-${randomBytes(10).toString('hex')}`
const USER = 'ops'

const DAGS = {
  'page_demo.yaml': `dag: page_demo
description: Status page demo pipeline
owner: ml-platform
tags: [demo]
schedule: "0 2 * * *"
start_date: 2026-01-01
catchup: none
params:
  rows: { type: integer, default: 3, minimum: 1, maximum: 10, description: rows to extract }
  mode: { type: string, enum: [fast, slow], default: fast }
  label: { type: string, default: demo, maxLength: 20 }
tasks:
  extract:
    operator: shell
    env: { ROWS: "{{ params.rows }}", MODE: "{{ params.mode }}" }
    params:
      script: |
        echo "extracting $ROWS rows ($MODE)"
        for i in 1 2 3 4 5 6; do echo "extract line $i"; sleep 0.4; done
        printf '{"rows": %s}' "$ROWS" > "$CAIRN_OUTPUTS"
  transform:
    operator: shell
    depends_on: extract
    params:
      script: |
        for i in 1 2 3; do echo "transform step $i"; sleep 0.3; done
  quality:
    operator: shell
    depends_on: extract
    env: { API_TOKEN: "{{ secrets.page_canary }}" }
    params:
      script: |
        echo "quality ok, token $API_TOKEN"
        printf '{"token": "%s"}' "$API_TOKEN" > "$CAIRN_OUTPUTS"
  load:
    operator: shell
    depends_on: [transform, quality]
    params: { command: [echo, "loaded"] }
`,
  'page_hold.yaml': `dag: page_hold
tasks:
  wait:
    operator: shell
    params:
      script: |
        echo "holding"
        sleep 600
`,
  'page_many.yaml': `dag: page_many
tasks:
  count: { operator: shell, params: { script: "seq 1 1500" } }
`,
  'page_broken.yaml': `dag: page_broken
tasks:
  a: { operator: shel }
`,
}

const skipReason = browserSkipReason()

describe('status page in a real browser', { skip: skipReason }, () => {
  const suite = pageSuite()
  let engine: TestEngine
  let base: string
  let page: Page
  let demoRun: string
  let holdRun: string

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true })
  const apiGet = async (path: string): Promise<any> => {
    const res = await page.request.get(base + path)
    assert.equal(res.status(), 200, `${path}: ${await res.text()}`)
    return res.json()
  }

  after(() => suite.stop())

  before(async () => {
    engine = await suite.engine({ dags: DAGS })
    engine.spawnWorker({ env: { CAIRN_SECRET_PAGE_CANARY: CANARY } })
    // What `cairn users create ops --role operator` does.
    assert.equal(passwordProblem(PASSWORD), undefined)
    await waitFor('the DAG files to load', async () => {
      const { rows } = await engine.db.query('SELECT dag_id FROM cairn.dag WHERE version_id IS NOT NULL')
      return rows.length === 3 || undefined
    })

    // The first test logs in itself.
    ;({ page, base } = await suite.open({ db: engine.db, user: USER, role: 'operator', web: { followPollMs: 250 }, console: false }))
    page.on('console', (message) => {
      // A 401 before login and the 400 of the deliberately bad trigger are expected network errors.
      if (message.type() === 'error' && !/status of 40[01]/.test(message.text())) suite.pageErrors.push(`console: ${message.text()}`)
    })
    page.on('response', (response) => {
      if (response.status() === 404) suite.pageErrors.push(`404: ${response.url()}`)
      // Every answer the page gets (event streams never end, so their text cannot be awaited).
      if (!String(response.headers()['content-type']).startsWith('text/event-stream')) {
        pageBodies.push(response.text().catch(() => ''))
      }
    })
    page.on('dialog', (dialog) => void dialog.accept())
  })

  test('an anonymous visitor is sent to the login page; logging in shows the DAG list', async () => {
    await page.goto(base + '/')
    assert.match(page.url(), /\/login$/)
    await page.fill('#password', 'wrong password')
    await page.fill('#username', USER)
    await page.click('button[type=submit]')
    await page.waitForSelector('#login-error:not([hidden])')
    assert.match(await page.textContent('#login-error') ?? '', /wrong user name or password/)
    await shot('01-login-error')

    await page.fill('#password', PASSWORD)
    await page.click('button[type=submit]')
    await page.waitForSelector('#dag-table tr[data-dag="page_demo"]')
    assert.equal(new URL(page.url()).pathname, '/')
    assert.match(await page.textContent('#who') ?? '', /ops \(operator\)/)
    const row = page.locator('#dag-table tr[data-dag="page_demo"]')
    assert.match(await row.textContent() ?? '', /0 2 \* \* \*.*At 02:00/s)
    assert.match(await row.textContent() ?? '', /active/)
    // "Next run" is when the run will be created (its interval's end: tomorrow's 02:00 run covers today),
    // not its logical date, which stays as the secondary line and in the tooltip.
    const next = (await apiGet('/api/v1/dags')).dags.find((d: { dag_id: string }) => d.dag_id === 'page_demo').next_run
    assert.equal(Date.parse(next.run_after) - Date.parse(next.logical_date), 24 * 3600_000, JSON.stringify(next))
    const shown = (iso: string) => page.evaluate(async (value) => (await import('/static/format.js' as string)).fmtTime(value), iso)
    const cell = '#dag-table tr[data-dag="page_demo"] td.next-run'
    assert.equal(await page.textContent(`${cell} .next-run-at`), await shown(next.run_after))
    assert.equal(await page.textContent(`${cell} .next-run-logical`), `logical date ${await shown(next.logical_date)}`)
    assert.match(await page.textContent(cell) ?? '', /in \d+ (d|h|min)/)
    const title = await page.getAttribute(cell, 'title') ?? ''
    assert.ok(title.includes(`data interval ${await shown(next.logical_date)} – ${await shown(next.data_interval_end)}`), title)
    // The broken file is listed with FILE:LINE:COL diagnostics.
    await page.waitForSelector('.import-error[data-file$="page_broken.yaml"]')
    assert.match(await page.textContent('#import-errors') ?? '', /page_broken\.yaml:3:\d+: error \S+: /)
    await shot('02-dag-list')
  })

  test("a DAG's page shows its graph, grid and trigger form", async () => {
    await page.click('a.dag-link:text-is("page_demo")')
    await page.waitForSelector('svg.dag-graph g.node[data-task="load"]')
    const nodes = await page.locator('svg.dag-graph g.node').evaluateAll((els) => els.map((el) => el.getAttribute('data-task')))
    assert.deepEqual(nodes.sort(), ['extract', 'load', 'quality', 'transform'])
    assert.equal(await page.locator('svg.dag-graph path.edge').count(), 4)
    // dagre lays the graph out left to right: extract before transform before load.
    const x = async (task: string) => (await page.locator(`svg.dag-graph g.node[data-task="${task}"]`).boundingBox())!.x
    assert.ok((await x('extract')) < (await x('transform')) && (await x('transform')) < (await x('load')))
    await page.waitForSelector('#trigger-form [data-param="mode"] select')
    assert.equal(await page.inputValue('#param-rows'), '3')
    // The source as loaded, with the version history beside it.
    await page.waitForSelector('#dag-source[data-version]')
    assert.match(await page.textContent('#dag-source') ?? '', /^dag: page_demo$/m)
    assert.match(await page.textContent('#version-select option') ?? '', /^v\d+ .* current$/)
    await shot('03-dag-page')
  })

  test('the trigger form checks params before submit, shows server errors, then starts a run', async () => {
    await page.fill('#param-rows', '50')
    await page.click('#trigger-submit')
    await page.waitForSelector('#param-rows-error:not([hidden])')
    assert.match(await page.textContent('#param-rows-error') ?? '', /≤ 10/)
    await shot('04-trigger-invalid')

    await page.fill('#param-rows', '4')
    await page.fill('#trigger-logical-date', 'not a date')
    await page.click('#trigger-submit')
    await page.waitForSelector('#param-rows-error[hidden]', { state: 'attached' })
    await page.waitForSelector('.notice.error:not([hidden])')
    assert.match(await page.textContent('.notice.error') ?? '', /not a date/)

    await page.evaluate(() => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true))
    await page.fill('#trigger-logical-date', '')
    await page.selectOption('#param-mode', { label: 'slow' })
    await page.click('#trigger-submit')
    await page.waitForSelector('#triggered-run')
    demoRun = (await page.textContent('#triggered-run'))!
    const run = await apiGet(`/api/v1/runs/${encodeURIComponent(demoRun)}`)
    assert.deepEqual(run.params, { rows: 4, mode: 'slow', label: 'demo' })
  })

  test('task states change in the grid and the graph without reloading', async () => {
    const cell = (task: string, state: string) => `#grid a.cell[data-run="${demoRun}"][data-task="${task}"][data-state="${state}"]`
    await page.waitForSelector(cell('extract', 'running'))
    await page.waitForSelector('svg.dag-graph g.node[data-task="extract"][data-state="running"]')
    await shot('05-dag-running')
    await page.waitForSelector(cell('load', 'success'), { timeout: 30_000 })
    await page.waitForSelector('svg.dag-graph g.node[data-task="load"][data-state="success"]')
    for (const task of ['extract', 'transform', 'quality']) await page.waitForSelector(cell(task, 'success'))
    assert.equal(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded), true, 'the page reloaded')
    // Updates came over the live-state stream, not the slow fallback poll.
    assert.doesNotMatch(await page.getAttribute('#live', 'class') ?? '', /\boff\b/)
    await page.waitForSelector(`#grid button.run-mark[data-run="${demoRun}"][data-state="success"]`)
    await shot('06-dag-success')
  })

  test("the run page shows a Gantt chart, a task's outputs and its live log; a task can be cleared", async () => {
    await page.click(`#grid a.cell[data-run="${demoRun}"][data-task="extract"]`)
    await page.waitForSelector('#task-detail:not([hidden])')
    await page.waitForSelector('svg.gantt rect.gantt-bar[data-task="extract"][data-state="success"]')
    assert.equal(await page.locator('svg.gantt rect.gantt-bar').count(), 4)
    await page.waitForSelector('#log .log-line:text("extract line 6")')
    assert.match(await page.textContent('#log') ?? '', /extracting 4 rows \(slow\)/)
    assert.match(await page.textContent('#task-outputs') ?? '', /"rows": 4/)
    await shot('07-run-page')

    // Clear `transform` (and `load` after it): both run again, and the log tail follows the new attempt live.
    await page.click('#task-table tr[data-task="transform"] a')
    await page.waitForSelector('#task-detail h2:text("transform")')
    await page.click('#clear-task')
    await page.waitForSelector('.notice.ok:text("Cleared")')
    assert.match(await page.textContent('.notice.ok') ?? '', /transform/)
    await page.waitForSelector('#attempt-tabs [data-attempt="2"]')
    await page.waitForSelector('#log .log-sep:text("attempt 2")')
    await page.waitForSelector('#log-box .log-tail[data-ended]', { timeout: 30_000 })
    await page.waitForSelector('#run-state [data-state="success"]', { timeout: 30_000 })
    assert.equal(await page.locator('svg.gantt rect.gantt-bar[data-task="transform"]').count(), 2)
    await shot('08-run-cleared')

    // The task that used the canary secret: its log and outputs show it masked, and no page holds it.
    await page.click('#task-table tr[data-task="quality"] a')
    await page.waitForSelector('#log .log-line:text("quality ok, token ***")')
    assert.match(await page.textContent('#task-outputs') ?? '', /"token": "\*\*\*"/)
    assert.ok(!(await page.content()).includes(CANARY), 'the canary secret is on the run page')
  })

  test('a running run can be cancelled from its page', async () => {
    const runId = await engine.trigger('page_hold')
    await page.goto(`${base}/#/runs/${encodeURIComponent(runId)}?task=wait`)
    await page.waitForSelector('#run-state [data-state="running"]')
    await page.waitForSelector('#log .log-line:text("holding")')
    await shot('09-run-holding')
    await page.click('#cancel-run')
    await page.waitForSelector('#run-state [data-state="cancelled"]')
    await page.waitForSelector('#task-table tr[data-task="wait"][data-state="cancelled"]')
    assert.equal(await engine.waitForRun(runId, 10_000), 'cancelled')
    await shot('10-run-cancelled')
    holdRun = runId
  })

  test('a long log opens at its tail; earlier lines load on demand; timestamps show on request; the whole log downloads', async () => {
    const runId = await engine.trigger('page_many')
    assert.equal(await engine.waitForRun(runId, 30_000), 'success')
    await page.goto(`${base}/#/runs/${encodeURIComponent(runId)}?task=count`)
    await page.waitForSelector('#log .log-line:text-is("1500")')
    await page.waitForSelector('#log-box .log-tail[data-ended]')
    // The last 1000 lines only, and a way to the others.
    assert.equal(await page.locator('#log .log-line').count(), 1000)
    assert.equal(await page.locator('#log .log-line').first().textContent(), '501')
    await page.click('#log-earlier')
    await page.waitForSelector('#log .log-line:text-is("1")')
    assert.equal(await page.locator('#log .log-line').count(), 1501)
    assert.match(await page.locator('#log .log-line').first().textContent() ?? '', /^running script/)
    await page.waitForSelector('#log-earlier', { state: 'hidden' })

    assert.equal(await page.$eval('#log .log-line', (el) => (globalThis as any).getComputedStyle(el, '::before').content as string), 'none')
    await page.check('#log-times')
    assert.match(await page.$eval('#log .log-line', (el) => (globalThis as any).getComputedStyle(el, '::before').content as string), /^"\d\d:\d\d:\d\d\.\d{3} "$/)
    await shot('10b-log-timestamps')
    const href = await page.getAttribute('#log-download', 'href')
    assert.match(href ?? '', /\/logs\/download\?attempt=1&timestamps=true$/)
    const download = await page.request.get(base + href)
    assert.equal(download.status(), 200)
    assert.match(download.headers()['content-disposition'] ?? '', /^attachment; filename="/)
    const lines = (await download.text()).trimEnd().split('\n')
    assert.equal(lines.length, 1501)
    assert.match(lines.at(-1)!, /^\d{4}-\d\d-\d\dT[\d:.]+Z 1500$/)
    await page.uncheck('#log-times')
  })

  test("the grid pages through a DAG's runs with the runs cursor", async () => {
    const newer = await engine.trigger('page_hold')
    await page.goto(`${base}/#/dags/page_hold?limit=1`)
    const mark = (runId: string) => `#grid button.run-mark[data-run="${runId}"]`
    await page.waitForSelector(mark(newer))
    assert.equal(await page.locator('#grid button.run-mark').count(), 1)
    await page.click('#runs-older')
    await page.waitForSelector(`${mark(holdRun)}[data-state="cancelled"]`)
    await page.waitForSelector('#runs-older[disabled]')
    await shot('11-grid-older-page')
    await page.click('#runs-newer')
    await page.waitForSelector(mark(newer))
    // Cancel the second run the way the page does: a POST with the session's CSRF token.
    const csrf = await page.evaluate(() => sessionStorage.getItem('cairn.csrf'))
    const res = await page.request.post(`${base}/api/v1/runs/${encodeURIComponent(newer)}/cancel`, { headers: { 'x-csrf-token': csrf ?? '' } })
    assert.equal(res.status(), 200, await res.text())
    await page.waitForSelector(`${mark(newer)}[data-state="cancelled"]`)
  })

  test('a DAG can be paused from the list, and the list shows its last runs', async () => {
    await page.click('header a:text("DAGs")')
    const row = '#dag-table tr[data-dag="page_demo"]'
    await page.waitForSelector(`${row} .recent-runs a.run-mark[data-state="success"]`)
    await page.click(`${row} button.pause-toggle`)
    await page.waitForSelector(`${row} button.pause-toggle[data-paused="true"]`)
    assert.match(await page.textContent(`${row} .paused-cell`) ?? '', /paused/)
    const dags = await apiGet('/api/v1/dags')
    assert.equal(dags.dags.find((d: { dag_id: string }) => d.dag_id === 'page_demo').paused, true)
    await shot('12-dag-paused')
    assert.deepEqual(suite.pageErrors, [])
    const bodies = await Promise.all(pageBodies)
    assert.ok(bodies.length > 50, `only ${bodies.length} responses seen`)
    for (const body of bodies) assert.ok(!body.includes(CANARY), `the canary secret reached the page: ${body.slice(0, 300)}`)
  })

  test('a finished task can be marked success from its row, and the run settles again', async () => {
    const runId = await engine.trigger('page_hold')
    await waitFor('the hold task to run', async () => (await engine.taskStates(runId)).wait === 'running' || undefined)
    const csrf = await page.evaluate(() => sessionStorage.getItem('cairn.csrf'))
    const cancelled = await page.request.post(`${base}/api/v1/runs/${encodeURIComponent(runId)}/cancel`, { headers: { 'x-csrf-token': csrf ?? '' } })
    assert.equal(cancelled.status(), 200, await cancelled.text())
    await page.goto(`${base}/#/runs/${encodeURIComponent(runId)}`)
    await page.waitForSelector('#task-table tr[data-task="wait"][data-state="cancelled"]')
    assert.equal(await page.locator('#task-table tr[data-task="wait"] button.mark-task').count(), 2)
    await page.click('#task-table tr[data-task="wait"] button.mark-task[data-mark="success"]')
    await page.waitForSelector('.notice.ok:text("marked success")')
    assert.equal(await engine.waitForRun(runId, 30_000), 'success')
    await page.waitForSelector('#task-table tr[data-task="wait"][data-state="success"]')
    await page.waitForSelector('#run-state [data-state="success"]', { timeout: 30_000 })
    const history = await engine.db.query<{ actor: string | null }>(`SELECT actor FROM cairn.state_history WHERE run_id = $1 AND task_id = 'wait' AND to_state = 'success'`, [runId])
    assert.deepEqual(history.rows, [{ actor: USER }])
    assert.deepEqual(suite.pageErrors, [])
  })
})
