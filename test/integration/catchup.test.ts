/**
 * Catchup of a big backlog (a week of every-minute intervals, catchup: all) under max_active_runs: the
 * scheduler works it off in order, a couple of runs at a time, without starving another DAG and
 * without long passes. Nothing here asserts on wall time: the clock is injected, the test waits for
 * states (with generous deadlines), and "no long passes" is counted in statements per pass.
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
    // Passes happen when the test ticks and when a finished run wakes the scheduler; the timer never
    // fires within the test, so every pass is one the test caused (and can count).
    scheduler: { now: () => new Date(clock), loopMs: 3_600_000, syncEveryMs: 60_000, lostAfterMs: 1e12 },
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

  const succeededBacklog = async () =>
    Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM cairn.run WHERE dag_id = 'backlog' AND state = 'success'`)).rows[0]!.n)

  const steps = 90
  const durations: number[] = []
  let punctualAfterAPass = 0
  for (let step = 1; step <= steps; step++) {
    const doneBefore = await succeededBacklog()
    clock = t0 + step * MINUTE
    const started = performance.now()
    await scheduler.tick()
    durations.push(performance.now() - started)
    samples.push(await activeBacklog())
    // The interval that ended at this very minute has its run now, or (when this tick found the DAG's row
    // locked by a pass that a finished run woke, which read the clock just before it moved) after the next
    // pass, which the test makes itself. The clock does not move meanwhile: a starved DAG would never get it.
    const expected = clock - MINUTE
    if ((await newestPunctual()) !== expected) {
      punctualAfterAPass++
      await waitFor(`the punctual run of ${new Date(expected).toISOString()} (step ${step})`, async () => {
        if ((await newestPunctual()) === expected) return true
        await scheduler.tick()
        return (await newestPunctual()) === expected
      })
    }
    // The backlog moves on before the clock does: at least one more of its runs has finished.
    await waitFor(`a backlog run to finish (step ${step})`, async () => (await succeededBacklog()) > doneBefore, 60_000)
  }
  sampling = false
  await sampler

  // No busy loop and no long passes: with the backlog stuck at max_active_runs (no worker left to finish
  // its runs) and the clock standing still, the scheduler issues nothing on its own, and each pass the
  // test makes is a handful of statements, however many intervals the backlog still has.
  await engine.workers[0]!.drain(2000)
  await scheduler.tick()
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
  const perPass: number[] = []
  try {
    await sleep(1000)
    const unprompted = statements
    for (let pass = 0; pass < 5; pass++) {
      statements = 0
      await scheduler.tick()
      perPass.push(statements)
    }
    // At most a pass or two that the drained worker's last results woke, plus a statistics report.
    assert.ok(unprompted <= 2 * Math.max(...perPass) + 3, `an idle, blocked scheduler issued ${unprompted} statements on its own in 1 s`)
  } finally {
    db.query = query
    db.tx = tx
  }
  assert.equal(await activeBacklog(), 2)

  assert.ok(Math.max(...samples) <= 2, `backlog runs active at once: max ${Math.max(...samples)}`)
  assert.equal(Math.max(...samples), 2, 'the backlog did use both of its slots')

  const runs = await db.query<{ logical_date: Date; state: string }>(`SELECT logical_date, state FROM cairn.run WHERE dag_id = 'backlog' ORDER BY queued_at, run_id`)
  const created = runs.rows.length
  assert.ok(created >= steps, `the backlog made progress: ${created} runs`)
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
  // Wall times are reported, never asserted: they depend on the machine and its load.
  t.diagnostic(
    `backlog runs created: ${created} in ${steps} steps; ${samples.length} samples of active backlog runs, max ${Math.max(...samples)}; tick median ${durations[steps >> 1]!.toFixed(1)} ms, max ${durations[steps - 1]!.toFixed(1)} ms; punctual runs that came one pass after their tick: ${punctualAfterAPass}; statements per idle pass: ${perPass.join(', ')}`,
  )
  assert.ok(Math.max(...perPass) <= 12, `a pass over a blocked backlog of ${7 * 24 * 60 - created} intervals issued ${Math.max(...perPass)} statements`)
})
