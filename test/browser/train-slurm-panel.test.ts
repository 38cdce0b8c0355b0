/**
 * The run page of a 2-node `train` task on a real Slurm cluster (deploy/local-cluster), in a real
 * browser: while the job runs, the panel shows the Slurm job id (the one Slurm has), its state
 * RUNNING and each rank on its node (n1, n2), and the log can be narrowed to one rank; once the job
 * has ended, its state COMPLETED. Needs Chromium and the local cluster (both required under CI=true).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Page } from 'playwright-core'
import { taskWritableDir } from '../helpers/engine.ts'
import type { TestEngine } from '../helpers/engine.ts'
import { waitFor } from '../helpers/engine-extra.ts'
import { waitForDags } from '../helpers/run-rows.ts'
import { localClusterSkipReason, startLocalClusterFor } from '../helpers/local-cluster.ts'
import { browserSkipReason } from '../helpers/browser.ts'
import { ARTIFACTS, pageSuite } from '../helpers/page-suite.ts'

const run = promisify(execFile)
// Both asked (not short-circuited): under CI=true each registers its own failing test when missing.
const browserSkip = browserSkipReason()
const clusterSkip = localClusterSkipReason()
const skip = browserSkip || clusterSkip

describe('a Slurm training job on the run page', { skip }, () => {
  const suite = pageSuite()
  let engine: TestEngine
  let page: Page
  let runId: string
  let goFile: string
  let slurmEnv: Record<string, string>

  after(() => suite.stop())

  before(async () => {
    const cluster = await startLocalClusterFor(suite)
    const fragment = cluster.fragment
    slurmEnv = { SLURM_CONF: cluster.slurmConf }
    engine = await suite.engine({ dags: {}, scheduler: { loopMs: 200, syncEveryMs: 300 } })
    writeFileSync(join(engine.dir, 'cairn.yaml'), readFileSync(fragment, 'utf8'))
    goFile = join(taskWritableDir(join(engine.dir, 'files')), 'go')
    const script = `echo "begin on $(hostname) as rank $RANK"; while [ ! -e ${JSON.stringify(goFile)} ]; do sleep 0.1; done; echo "end of rank $RANK"`
    engine.writeDag('slurm_fit.yaml', `dag: slurm_fit
tasks:
  fit:
    operator: train
    params:
      executor: slurm
      cluster: local_slurm
      nodes: 2
      command: [sh, -c, ${JSON.stringify(script)}]
`)
    await waitForDags(engine.db, ['slurm_fit'])
    engine.spawnWorker({ env: slurmEnv })
    runId = await engine.trigger('slurm_fit')
    ;({ page } = await suite.open({ db: engine.db, user: 'viewer_sam', at: `/#/runs/${encodeURIComponent(runId)}?task=fit`, web: { followPollMs: 250, statePollMs: 250 }, timeoutMs: 120_000, console: false }))
  })

  test('while it runs: the job id Slurm has, RUNNING, each rank on its node, the log narrowed to one rank', async () => {
    await page.waitForSelector('#train-panel[data-executor="slurm"]')
    await waitFor('Slurm to run the job on both nodes', async () => {
      const { rows } = await engine.db.query<{ s: { state?: string; ranks?: unknown[] } | null }>(`SELECT executor_state AS s FROM cairn.attempt WHERE run_id = $1`, [runId])
      return rows[0]?.s?.state === 'RUNNING' && rows[0].s.ranks?.length === 2 ? true : undefined
    }, 120_000)
    // The page follows a running job on its own (no task state changes meanwhile), well within the page's 15 s fallback.
    await page.waitForFunction(() => (globalThis as any).document.querySelector('#train-job-state')?.textContent === 'RUNNING', undefined, { timeout: 8000 })
    await page.waitForSelector('#train-ranks tr[data-rank="1"][data-host="n2"]', { timeout: 8000 })
    const jobId = (await page.textContent('#train-job-id')) ?? ''
    assert.match(jobId, /^\d+$/)
    const { stdout } = await run('scontrol', ['show', 'job', '-o', jobId], { env: { ...process.env, ...slurmEnv } })
    assert.match(stdout, /JobState=RUNNING/)
    const hosts = await page.locator('#train-ranks tbody tr').evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-rank'), r.querySelector('td.rank-host')?.textContent]))
    assert.deepEqual(hosts, [['0', 'n1'], ['1', 'n2']])
    assert.equal(await page.textContent('#train-cluster'), 'local_slurm')

    await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#log .log-line[data-rank]').length >= 2)
    await page.click('#train-ranks tr[data-rank="1"] button')
    const shown = await page.locator('#log .log-line').evaluateAll((els) => els.filter((e) => (e as any).offsetParent !== null).map((e) => e.textContent))
    assert.ok(shown.length >= 1 && shown.every((l) => l?.startsWith('[rank 1] ')), JSON.stringify(shown))
    await page.screenshot({ path: join(ARTIFACTS, 'train-slurm-running.png'), fullPage: true })
  })

  test('once it has ended: COMPLETED, and the job id kept in the outputs', async () => {
    writeFileSync(goFile, '')
    assert.equal(await engine.waitForRun(runId, 120_000), 'success')
    await page.waitForFunction(() => (globalThis as any).document.querySelector('#train-job-state')?.textContent === 'COMPLETED')
    const { rows } = await engine.db.query<{ outputs: { job_id?: string } }>(`SELECT outputs FROM cairn.task_instance WHERE run_id = $1 AND task_id = 'fit'`, [runId])
    assert.equal(await page.textContent('#train-job-id'), rows[0]!.outputs.job_id)
    // Only rank 1's lines are still shown, its last one included.
    await page.waitForFunction(() => [...(globalThis as any).document.querySelectorAll('#log .log-line')].some((e: any) => e.offsetParent !== null && e.textContent === '[rank 1] end of rank 1'))
    assert.deepEqual(suite.pageErrors, [])
  })
})
