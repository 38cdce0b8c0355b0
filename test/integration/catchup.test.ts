/**
 * Catchup of a big backlog (a week of every-minute intervals, catchup: all) under max_active_runs: the
 * scheduler works it off in order, a couple of runs at a time, without starving another DAG and
 * without long passes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { startTestEngine } from '../helpers/engine.ts'
import { waitFor } from '../helpers/engine-extra.ts'

const MINUTE = 60_000

test('catchup: all over 10,000 missed minutes stays within max_active_runs, in logical-date order without gaps, while another DAG runs on time', async (t) => {
  const t0 = Date.parse('2026-03-02T12:00:00Z')
  const backlogStart = t0 - 7 * 24 * 60 * MINUTE
  let clock = t0
  const engine = await startTestEngine(t, {
    dags: {
      'backlog.yaml': `dag: backlog
schedule: "* * * * *"
start_date: "${new Date(backlogStart).toISOString()}"
catchup: all
max_active_runs: 2
tasks:
  nothing: { operator: noop }
`,
      'punctual.yaml': `dag: punctual
schedule: "* * * * *"
start_date: "2026-03-01T00:00:00Z"
catchup: latest
max_active_runs: 3
tasks:
  nothing: { operator: noop }
`,
    },
    // The fake clock runs far ahead of the worker's heartbeats: no attempt may be declared lost here.
    scheduler: { now: () => new Date(clock), loopMs: 200, syncEveryMs: 60_000, lostAfterMs: 1e12 },
    inProcessWorkers: 1,
  })
  const { db, scheduler } = engine
  assert.ok(scheduler)

  const activeBacklog = async () =>
    Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM cairn.run WHERE dag_id = 'backlog' AND state IN ('queued', 'running')`)).rows[0]!.n)

  // Sampled continuously as well as after each tick: the background loop (woken by every finished run) creates runs too.
  const samples: number[] = []
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      // Stops when the test's database goes away (a failed test's cleanup).
      const n = await activeBacklog().catch(() => undefined)
      if (n === undefined) return
      samples.push(n)
      await sleep(10)
    }
  })()
  t.after(async () => {
    sampling = false
    await sampler
  })

  const newestPunctual = async () =>
    (await db.query<{ logical_date: Date | null }>(`SELECT max(logical_date) AS logical_date FROM cairn.run WHERE dag_id = 'punctual'`)).rows[0]?.logical_date?.getTime()

  const steps = 90
  const durations: number[] = []
  const punctualLate: string[] = []
  let punctualAfterAPass = 0
  for (let step = 1; step <= steps; step++) {
    clock = t0 + step * MINUTE
    const started = performance.now()
    await scheduler.tick()
    durations.push(performance.now() - started)
    samples.push(await activeBacklog())
    // The interval that ended at this very minute has its run now, or (when this tick found the DAG's row
    // locked by a background pass that read the clock just before it moved) after the next pass.
    const expected = clock - MINUTE
    if ((await newestPunctual()) !== expected) {
      punctualAfterAPass++
      const got = await waitFor('the punctual run', async () => ((await newestPunctual()) === expected ? true : undefined), 1000).catch(() => false)
      if (!got) punctualLate.push(`step ${step}: newest ${new Date((await newestPunctual()) ?? 0).toISOString()}, expected ${new Date(expected).toISOString()}`)
    }
    await sleep(100)
  }
  sampling = false
  await sampler

  // No busy loop: with the backlog stuck at max_active_runs (no worker left to finish its runs) and the
  // clock standing still, the scheduler makes a pass every loopMs, each a handful of statements.
  await engine.workers[0]!.drain(2000)
  await sleep(500)
  let statements = 0
  const { query, tx } = db
  db.query = ((...args: Parameters<typeof query>) => {
    statements++
    return query(...args)
  }) as typeof query
  db.tx = ((...args: Parameters<typeof tx>) => {
    statements++
    return tx(...args)
  }) as typeof tx
  await sleep(2000)
  db.query = query
  db.tx = tx
  assert.equal(await activeBacklog(), 2)

  assert.deepEqual(punctualLate, [], 'the punctual DAG got each run at the tick its interval ended')
  assert.ok(Math.max(...samples) <= 2, `backlog runs active at once: max ${Math.max(...samples)}`)
  assert.equal(Math.max(...samples), 2, 'the backlog did use both of its slots')

  const runs = await db.query<{ logical_date: Date; state: string }>(`SELECT logical_date, state FROM cairn.run WHERE dag_id = 'backlog' ORDER BY queued_at, run_id`)
  const created = runs.rows.length
  assert.ok(created >= 20, `the backlog made progress: ${created} runs`)
  assert.ok(created <= 7 * 24 * 60 + steps, 'not more runs than intervals')
  assert.deepEqual(
    runs.rows.map((r) => r.logical_date.getTime()),
    Array.from({ length: created }, (_, i) => backlogStart + i * MINUTE),
    'created oldest first, one interval after the other',
  )
  assert.ok(runs.rows.slice(0, -2).every((r) => r.state === 'success'), 'every run but the newest two finished')
  const punctual = await db.query<{ logical_date: Date }>(`SELECT logical_date FROM cairn.run WHERE dag_id = 'punctual' ORDER BY logical_date`)
  // catchup: latest — the first pass (at t0) created only the newest interval, not the day and a half before it.
  assert.deepEqual(
    punctual.rows.map((r) => r.logical_date.getTime()),
    Array.from({ length: steps + 1 }, (_, i) => t0 - MINUTE + i * MINUTE),
  )

  durations.sort((a, b) => a - b)
  const median = durations[steps >> 1]!
  const max = durations[steps - 1]!
  t.diagnostic(
    `backlog runs created: ${created} in ${steps} steps; ${samples.length} samples of active backlog runs, max ${Math.max(...samples)}; tick median ${median.toFixed(1)} ms, max ${max.toFixed(1)} ms; punctual runs that came one background pass after their tick: ${punctualAfterAPass}; idle scheduler: ${statements} statements in 2 s`,
  )
  assert.ok(statements < 300, `an idle, blocked scheduler issued ${statements} statements in 2 s`)
  assert.ok(median < 250, `a pass takes ${median.toFixed(0)} ms (median)`)
  assert.ok(max < 2000, `the slowest pass took ${max.toFixed(0)} ms`)
})
