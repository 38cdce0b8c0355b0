/**
 * The run page of a `train` task and of a gate, in a real browser against a real engine:
 * - a 2-rank training job (local executor) shows its executor and its ranks, and per-rank filters
 *   on its live log narrow it to one rank's lines (lines that arrive later too) or show them all
 *   again; its metrics and the model version it registered (a link to the Models view);
 * - a gate's report (metric, value, threshold, baseline, pass/fail) for a gate that passed and for
 *   one that failed (a failed task keeps its outputs), written by a task to $CAIRN_OUTPUTS;
 * - names, lines and reports that look like HTML are shown as text.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { taskWritableDir } from '../helpers/engine.ts'
import type { TestEngine } from '../helpers/engine.ts'
import { waitFor } from '../helpers/engine-extra.ts'
import { browserSkipReason } from '../helpers/browser.ts'
import { ARTIFACTS, HOSTILE, pageSuite } from '../helpers/page-suite.ts'

const skip = browserSkipReason()

const PASSED_GATE = {
  passed: true,
  metrics: { auc: 0.81, log_loss: 0.42 },
  baseline_metrics: { auc: 0.79, log_loss: 0.45 },
  report: [
    { metric: 'auc', value: 0.81, threshold: { min: 0.75 }, baseline: 0.79, min_improvement: 0.005, passed: true },
    { metric: 'log_loss', value: 0.42, threshold: { max: 0.5 }, baseline: 0.45, min_improvement: null, passed: true },
  ],
}
const FAILED_GATE = {
  passed: false,
  metrics: { auc: 0.7, [HOSTILE]: 1 },
  baseline_metrics: null,
  report: [
    { metric: 'auc', value: 0.7, threshold: { min: 0.75 }, baseline: null, min_improvement: null, passed: false, reason: 'below min 0.75' },
    { metric: HOSTILE, value: 1, threshold: null, baseline: null, min_improvement: null, passed: true, reason: HOSTILE },
  ],
}

/** A shell task that writes `outputs` to $CAIRN_OUTPUTS, then exits with `code`. */
function gateTask(outputs: unknown, code: number): string {
  return JSON.stringify(`cat > "$CAIRN_OUTPUTS" <<'JSON'\n${JSON.stringify(outputs)}\nJSON\nexit ${code}`)
}

describe('train and gate tasks on the run page', { skip }, () => {
  const suite = pageSuite()
  let engine: TestEngine
  let base: string
  let page: Page
  let trainRun: string
  let gateRun: string
  let goFile: string

  after(() => suite.stop())

  before(async () => {
    engine = await suite.engine({ dags: {}, inProcessWorkers: 1 })
    const files = taskWritableDir(join(engine.dir, 'files'))
    goFile = join(files, 'go')
    // Each rank writes two lines, waits until the test says go, then writes two more (one looks like HTML).
    const script = [
      'echo "hello from rank $RANK of $WORLD_SIZE"',
      `if [ "$RANK" = 0 ]; then echo '{"auc": 0.875, "loss": 0.25, "${HOSTILE.replaceAll('"', '\\"')}": 1}' > metrics.json; echo onnx > model.onnx; fi`,
      'echo "ready $RANK"',
      `while [ ! -e ${JSON.stringify(goFile)} ]; do sleep 0.05; done`,
      'echo "after go from rank $RANK"',
      `echo ${JSON.stringify(HOSTILE)}`,
    ].join('\n')
    engine.writeDag('fit_ranks.yaml', `dag: fit_ranks
tasks:
  fit:
    operator: train
    params:
      executor: local
      nodes: 1
      tasks_per_node: 2
      command: [/bin/sh, -c, ${JSON.stringify(script)}]
      artifacts: [model.onnx, metrics.json]
      model_name: ranked_model
`)
    engine.writeDag('gates.yaml', `dag: gates
tasks:
  gate_passed: { operator: shell, retries: 0, params: { command: [/bin/sh, -c, ${gateTask(PASSED_GATE, 0)}] } }
  gate_failed: { operator: shell, retries: 0, params: { command: [/bin/sh, -c, ${gateTask(FAILED_GATE, 1)}] } }
`)
    await waitFor('the DAG files to load', async () => {
      const { rows } = await engine.db.query('SELECT dag_id FROM cairn.dag WHERE version_id IS NOT NULL')
      return rows.length === 2 || undefined
    })
    gateRun = await engine.trigger('gates')
    trainRun = await engine.trigger('fit_ranks')
    ;({ page, base } = await suite.open({ db: engine.db, user: 'viewer_val', at: `/#/runs/${encodeURIComponent(trainRun)}?task=fit`, web: { followPollMs: 250, data: { dir: engine.data.dir } }, timeoutMs: 30_000 }))
  })

  // The ranks' own lines (the log also has the operator's lines, stream "log", which have no rank).
  const shownLines = () => page.locator('#log .log-line.stream-stdout').evaluateAll((els) => els.filter((e) => (e as any).offsetParent !== null).map((e) => e.textContent))

  test('a running 2-rank job: its executor and ranks, and the log narrowed to one rank as lines arrive', async () => {
    await page.waitForSelector('#train-panel #train-ranks tr[data-rank="1"]')
    assert.equal(await page.textContent('#train-executor'), 'local')
    // Local ranks run on the worker's host.
    const hosts = await page.locator('#train-ranks tbody tr').evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-rank'), r.querySelector('td.rank-host')?.textContent]))
    assert.deepEqual(hosts, [['0', hostname()], ['1', hostname()]])
    // No Slurm job for a local executor.
    assert.equal(await page.locator('#train-job-id').count(), 0)
    await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#log .log-line.stream-stdout').length >= 4)
    assert.deepEqual((await shownLines()).sort(), ['[rank 0] hello from rank 0 of 2', '[rank 0] ready 0', '[rank 1] hello from rank 1 of 2', '[rank 1] ready 1'])
    const filters = await page.locator('#log-rank-filter button').evaluateAll((els) => els.map((e) => e.getAttribute('data-rank')))
    assert.deepEqual(filters, ['all', '0', '1'])

    await page.click('#log-rank-filter button[data-rank="1"]')
    assert.deepEqual((await shownLines()).sort(), ['[rank 1] hello from rank 1 of 2', '[rank 1] ready 1'])
    assert.equal(await page.getAttribute('#log-rank-filter button[data-rank="1"]', 'aria-pressed'), 'true')
    // The panel's rank row says which rank the log shows.
    await page.waitForSelector('#train-ranks tr[data-rank="1"] button.active')

    // Lines written after the filter was chosen are narrowed too.
    writeFileSync(goFile, '')
    await page.waitForSelector('#log-box .log-tail[data-ended]')
    assert.deepEqual((await shownLines()).sort(), [`[rank 1] ${HOSTILE}`, '[rank 1] after go from rank 1', '[rank 1] hello from rank 1 of 2', '[rank 1] ready 1'])
    assert.equal(await page.locator('#log .log-line.stream-stdout').count(), 8)

    // From the panel: rank 0 only, then every line again.
    await page.click('#train-ranks tr[data-rank="0"] button')
    await page.waitForFunction(() => (globalThis as any).document.querySelector('#log-rank-filter button[data-rank="0"]')?.getAttribute('aria-pressed') === 'true')
    assert.ok((await shownLines()).every((l) => l?.startsWith('[rank 0] ')))
    assert.equal((await shownLines()).length, 4)
    await page.click('#log-rank-filter button[data-rank="all"]')
    assert.equal((await shownLines()).length, 8)
    assert.equal(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned), undefined)
    assert.equal(await page.locator('#view img').count(), 0)
  })

  test('the finished job: metrics and the registered version, linked to the Models view', async () => {
    assert.equal(await engine.waitForRun(trainRun, 60_000), 'success')
    await page.waitForSelector('#train-model-link')
    assert.equal(await page.textContent('#train-model-link'), 'ranked_model v1')
    const metrics = await page.locator('#train-metrics tbody tr').evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)))
    assert.deepEqual(metrics, [['auc', '0.875'], ['loss', '0.25'], [HOSTILE, '1']])
    assert.equal(await page.locator('#view img').count(), 0)
    await page.screenshot({ path: join(ARTIFACTS, 'train-task-panel.png'), fullPage: true })
    await page.click('#train-model-link')
    await page.waitForSelector('#model-versions-table tr[data-version="1"][data-stage="candidate"]')
    assert.match(page.url(), /#\/models\/ranked_model\?version=1$/)
    const madeBy = page.locator('#model-version-lineage a.lineage-run')
    assert.equal(await madeBy.textContent(), `${trainRun} / fit (attempt 1)`)
  })

  test('a gate that passed: its report as a table', async () => {
    assert.equal(await engine.waitForRun(gateRun, 60_000), 'failed')
    await page.goto(`${base}/#/runs/${encodeURIComponent(gateRun)}?task=gate_passed`)
    await page.waitForSelector('#gate-report[data-passed="true"]')
    assert.equal(await page.textContent('#gate-verdict'), 'passed')
    const rows = await page.locator('#gate-table tbody tr').evaluateAll((trs) => trs.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)))
    assert.deepEqual(rows, [
      ['auc', '0.81', '≥ 0.75', '0.79 (to beat by 0.005)', 'pass'],
      ['log_loss', '0.42', '≤ 0.5', '0.45', 'pass'],
    ])
    assert.equal(await page.locator('#train-panel').count(), 0)
  })

  test('a gate that failed keeps its outputs: the failing metric and its reason; hostile names stay text', async () => {
    await page.goto(`${base}/#/runs/${encodeURIComponent(gateRun)}?task=gate_failed`)
    await page.waitForSelector('#gate-report[data-passed="false"]')
    assert.equal(await page.textContent('#gate-verdict'), 'not met')
    const rows = await page.locator('#gate-table tbody tr').evaluateAll((trs) => trs.map((r) => [r.getAttribute('data-passed'), ...[...r.querySelectorAll('td')].map((td) => td.textContent)]))
    assert.deepEqual(rows, [
      ['false', 'auc', '0.7', '≥ 0.75', '—', 'fail below min 0.75'],
      ['true', HOSTILE, '1', 'none', '—', `pass ${HOSTILE}`],
    ])
    assert.equal(await page.locator('#view img').count(), 0)
    assert.equal(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned), undefined)
    await page.screenshot({ path: join(ARTIFACTS, 'gate-failed-report.png'), fullPage: true })
    assert.ok(existsSync(goFile))
    assert.deepEqual(suite.pageErrors, [])
  })
})
