/**
 * SPEC section 5: a task instance's `outputs` are the published outputs of its latest attempt. An earlier
 * attempt's outputs must not show while a retry runs, nor after a retry that published none.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestEngine, taskWritableDir } from '../helpers/engine.ts'
import { waitFor } from '../helpers/engine-extra.ts'
import { taskJson } from '../../engine/json-shapes.ts'
import { listTaskInstances } from '../../engine/store/runs.ts'

test("outputs are the latest attempt's: none while a retry runs, and not the first attempt's after it fails without any", async (t) => {
  const gate = join(taskWritableDir(mkdtempSync(join(tmpdir(), 'cairn-outputs-'))), 'go')
  const engine = await startTestEngine(t, {
    dags: {
      'flaky.yaml': `dag: flaky
tasks:
  work:
    operator: shell
    retries: 1
    retry_delay: 100ms
    env: { GATE: "${gate}" }
    params:
      script: |
        if [ "$CAIRN_ATTEMPT" = 1 ]; then printf '{"marker": "first"}' > "$CAIRN_OUTPUTS"; exit 3; fi
        while [ ! -e "$GATE" ]; do sleep 0.05; done
        exit 4
`,
    },
    inProcessWorkers: 1,
  })
  const runId = await engine.trigger('flaky')
  const work = async () => taskJson((await listTaskInstances(engine.db, runId)).find((ti) => ti.taskId === 'work')!)
  const retrying = await waitFor('the second attempt to run', async () => {
    const ti = await work()
    return ti.attempts === 2 && ti.state === 'running' ? ti : undefined
  })
  assert.deepEqual(retrying.outputs, {}, 'the first attempt outputs still showed while the second ran')
  writeFileSync(gate, '')
  assert.equal(await engine.waitForRun(runId), 'failed')
  const ended = await work()
  assert.equal(ended.attempts, 2)
  assert.equal(ended.outputs.marker, undefined, `the first attempt's outputs survived the second: ${JSON.stringify(ended.outputs)}`)
  assert.equal(ended.outputs.exit_code, 4)
})
