/**
 * A task whose templates are hostile (40 loops, each as long as Liquid's per-template limit allows)
 * in a process that also serves the web API: the task fails as invalid_params with a message about
 * the render budget, and /healthz keeps answering quickly the whole time. Before, the render ran on
 * the event loop and held /healthz for 40 s.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestEngine } from '../helpers/engine.ts'
import { testLogger } from '../helpers/postgres.ts'
import { rawRequest, startTestWeb } from '../helpers/web-client.ts'
import { attemptRows, taskRows, waitForDags } from '../helpers/run-rows.ts'

const LOOP = '{% for i in (1..10000) %}{% for j in (1..10000) %}{{ j }}{% endfor %}{% endfor %}'
const HOSTILE = `dag: hostile_render
tasks:
  heavy:
    operator: shell
    env:
${Array.from({ length: 40 }, (_, i) => `      V${i}: "${LOOP}"`).join('\n')}
    params: { command: ["true"] }
`

test('/healthz answers within a second while a hostile task renders, and the task fails on its render budget', async (t) => {
  const engine = await startTestEngine(t, { dags: { 'hostile_render.yaml': HOSTILE }, inProcessWorkers: 1, scheduler: { loopMs: 100 } })
  const { app, base } = await startTestWeb({ db: engine.db, log: testLogger() })
  t.after(() => app.close())
  await waitForDags(engine.db, ['hostile_render'])
  const runId = await engine.trigger('hostile_render')

  const latencies: number[] = []
  let sawRendering = false
  const deadline = Date.now() + 120_000
  let state = ''
  while (Date.now() < deadline) {
    const started = performance.now()
    const health = await rawRequest(base, 'GET', '/healthz')
    latencies.push(performance.now() - started)
    assert.equal(health.status, 200, health.body)
    const attempts = await attemptRows(engine.db, runId, 'heavy')
    if (attempts.some((a) => a.state === 'running')) sawRendering = true
    state = (await taskRows(engine.db, runId)).get('heavy')?.state ?? ''
    if (state === 'failed' || state === 'success') break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const row = (await taskRows(engine.db, runId)).get('heavy')!
  assert.equal(row.state, 'failed')
  assert.equal(row.failure_kind, 'invalid_params')
  assert.match(row.message ?? '', /took longer than their 2000 ms render budget/)
  assert.ok(sawRendering, 'the attempt was never seen running')
  const worst = Math.max(...latencies)
  t.diagnostic(`/healthz: ${latencies.length} requests during the render, worst ${worst.toFixed(0)} ms`)
  assert.ok(worst < 1000, `/healthz took ${worst.toFixed(0)} ms during the render`)
})
