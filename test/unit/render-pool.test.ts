import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRenderPool } from '../../engine/template/render-pool.ts'
import { renderTaskTemplates } from '../../engine/template/render.ts'
import type { TemplateVariables } from '../../engine/template/render.ts'
import { createSecretStore } from '../../engine/secrets/secrets.ts'

function variables(secrets = createSecretStore({ env: { CAIRN_SECRET_TOKEN: 'tok-123456' } })): TemplateVariables {
  return {
    dag: { id: 'd' },
    run: { id: 'r', logical_date: '2026-03-01T00:00:00.000Z', data_interval_start: '2026-03-01T00:00:00.000Z', data_interval_end: '2026-03-02T00:00:00.000Z', is_latest: true },
    task: { id: 't', attempt: 1 },
    ds: '2026-03-01',
    ds_nodash: '20260301',
    params: { n: 3, list: ['a', 'b'] },
    tasks: { up: { outputs: { rows: 7 } } },
    secrets,
  }
}

/** 40 templates, each looping until Liquid's per-render limit stops it: 40 s on one thread before. */
const HOSTILE = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`V${i}`, '{% for i in (1..10000) %}{% for j in (1..10000) %}{{ j }}{% endfor %}{% endfor %}']))

test('the pool renders exactly what the in-process renderer does, secrets looked up lazily on the main thread', async (t) => {
  const pool = createRenderPool({ size: 1 })
  t.after(() => pool.close())
  const looked: string[] = []
  const base = createSecretStore({ env: { CAIRN_SECRET_TOKEN: 'tok-123456', CAIRN_SECRET_OTHER: 'other-secret' } })
  const store = { get: (name: string) => (looked.push(name), base.get(name)) }
  const templates = { params: { a: '{{ params.n }}-{{ tasks.up.outputs.rows }}', b: ['{{ ds_nodash }}', { c: '{{ secrets.TOKEN }}' }] }, env: { E: '{{ params.list | json }}' }, when: '{{ params.n > 1 }}' }
  const inline = renderTaskTemplates(templates, variables(base))
  const pooled = await pool.render(templates, variables(store))
  assert.deepEqual(pooled, inline)
  assert.deepEqual(looked, ['TOKEN'])
  assert.deepEqual(pooled.secretValues, ['tok-123456'])
  const missing = await pool.render({ params: { v: '{{ secrets.NOPE }}' } }, variables(store))
  assert.equal(missing.ok, false)
  assert.match(missing.ok ? '' : missing.message, /a secret it uses is not set/)
})

test('a hostile task gets one budget for all its templates, and the event loop keeps turning meanwhile', async (t) => {
  const pool = createRenderPool({ size: 1 })
  t.after(() => pool.close())
  let worstLagMs = 0
  let last = performance.now()
  const ticker = setInterval(() => {
    const now = performance.now()
    worstLagMs = Math.max(worstLagMs, now - last - 20)
    last = now
  }, 20)
  const started = performance.now()
  const result = await pool.render({ env: HOSTILE }, variables())
  const elapsed = performance.now() - started
  clearInterval(ticker)
  assert.equal(result.ok, false)
  assert.match(result.ok ? '' : result.message, /took longer than their 2000 ms render budget/)
  // Only one message: templates after the budget ran out are not tried.
  assert.equal(result.ok ? 0 : result.message.split('render budget').length - 1, 1, result.ok ? '' : result.message)
  assert.ok(elapsed < 10_000, `render took ${elapsed.toFixed(0)} ms`)
  assert.ok(worstLagMs < 500, `the event loop stalled for ${worstLagMs.toFixed(0)} ms`)
  // The thread is reused for the next task.
  const next = await pool.render({ params: { v: '{{ params.n }}' } }, variables())
  assert.deepEqual(next.ok ? next.params : next.message, { v: '3' })
})

test('rendered output is bounded per task, and a thread that runs out of heap is replaced', async (t) => {
  const big = '{% for i in (1..200) %}{{ params.chunk }}{% endfor %}'
  const vars = { ...variables(), params: { chunk: 'x'.repeat(100_000) } }
  const many = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`V${i}`, big]))
  const inline = renderTaskTemplates({ env: many }, vars)
  assert.equal(inline.ok, false)
  assert.match(inline.ok ? '' : inline.message, /exceed 16777216 characters together/)

  // `upcase` makes each copy a real string (appending alone builds cheap ropes): ~15 MB in the first template.
  const flat = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`V${i}`, '{% for i in (1..150) %}{{ params.chunk | upcase }}{% endfor %}']))
  const pool = createRenderPool({ size: 1, heapMb: 16 })
  t.after(() => pool.close())
  const starved = await pool.render({ env: flat }, vars)
  assert.equal(starved.ok, false)
  assert.match(starved.ok ? '' : starved.message, /needed more than the 16 MiB memory budget/)
  const next = await pool.render({ params: { v: '{{ params.chunk | size }}' } }, vars)
  assert.deepEqual(next.ok ? next.params : next.message, { v: '100000' })
})

test('a thread stuck inside one operation past the budget is terminated and replaced', async (t) => {
  // One filter chain is one step for Liquid's time checks: sorting a million strings (about 10 s here) cannot be interrupted from inside.
  const vars = { ...variables(), params: { s: Array.from({ length: 1_000_000 }, (_, i) => String((i * 7919) % 1_000_003)).join(',') } }
  const pool = createRenderPool({ size: 1, budget: { timeMs: 500, outputChars: 1e9 }, graceMs: 0 })
  t.after(() => pool.close())
  const stuck = await pool.render({ env: { A: '{{ params.s | split: "," | sort | join: "," | size }}' } }, vars)
  assert.equal(stuck.ok, false)
  assert.match(stuck.ok ? '' : stuck.message, /took longer than their 500 ms render budget .*; the rendering thread was stopped$/)
  const next = await pool.render({ env: { A: '{{ task.id }}' } }, vars)
  assert.deepEqual(next.ok ? next.env : next.message, { A: 't' })
})
