/**
 * /metrics counts kept on write (migration 0010): after real runs, clears, a prune-style delete and
 * folds, the rollup equals the same figures aggregated from the tables, and dead workers are left out.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestEngine } from '../helpers/engine.ts'
import { foldMetricDeltas, readMetricCounts } from '../../engine/store/metric-rollup.ts'
import type { Queryable } from '../../engine/store/queryable.ts'
import { DURATION_BUCKETS, createWebMetrics } from '../../engine/web/metrics.ts'
import { clearRun } from '../../engine/store/control.ts'

/** The figures as the old /metrics computed them, from the whole history. */
async function fromScratch(q: Queryable): Promise<string[]> {
  const { rows } = await q.query<{ line: string }>(
    `SELECT 'run|' || dag_id || '||' || state || '|0|' || count(*) AS line FROM cairn.run GROUP BY dag_id, state
     UNION ALL
     SELECT 'task_instance|' || r.dag_id || '|' || t.task_id || '|' || t.state || '|0|' || count(*) FROM cairn.task_instance t JOIN cairn.run r USING (run_id) GROUP BY r.dag_id, t.task_id, t.state`,
  )
  return rows.map((r) => r.line).sort()
}

async function fromRollup(q: Queryable): Promise<string[]> {
  return (await readMetricCounts(q))
    .filter((c) => c.kind !== 'duration')
    .map((c) => `${c.kind}|${c.dag_id}|${c.task_id}|${c.state}|${c.le}|${c.n}`)
    .sort()
}

async function durations(q: Queryable): Promise<string[]> {
  return (await readMetricCounts(q))
    .filter((c) => c.kind === 'duration')
    .map((c) => `${c.dag_id}|${c.task_id}|${c.state}|${c.le}|${c.n}`)
    .sort()
}

test('metric counts kept on write equal the counts aggregated from the tables, through runs, clears, folds and deletes', async (t) => {
  const engine = await startTestEngine(t, {
    dags: {
      'm.yaml': `dag: m
params:
  fail: { type: boolean, default: false }
tasks:
  a: { operator: shell, params: { command: [sh, -c, 'sleep 0.2'] } }
  b: { operator: shell, depends_on: a, env: { FAIL: "{{ params.fail }}" }, params: { script: 'test "$FAIL" = false' } }
  c: { operator: noop, depends_on: b }
`,
    },
    inProcessWorkers: 1,
  })
  const ok = await engine.trigger('m')
  const bad = await engine.trigger('m', { fail: true })
  assert.equal(await engine.waitForRun(ok), 'success')
  assert.equal(await engine.waitForRun(bad), 'failed')
  assert.deepEqual(await fromRollup(engine.db), await fromScratch(engine.db))

  const folded = await engine.db.tx((q) => foldMetricDeltas(q))
  assert.ok(folded !== null)
  const { rows: left } = await engine.db.query<{ n: string }>('SELECT count(*) AS n FROM cairn.metric_delta')
  // Only what changed after the fold (a scheduler pass may have folded first) is left.
  assert.ok(Number(left[0]!.n) < 10, `${left[0]!.n} deltas left after a fold`)
  assert.deepEqual(await fromRollup(engine.db), await fromScratch(engine.db))

  // A clear moves finished task instances back to pending, and the rerun moves them on again.
  const cleared = await engine.db.tx((q) => clearRun(q, bad))
  assert.ok(cleared.ok)
  assert.deepEqual(await fromRollup(engine.db), await fromScratch(engine.db))
  assert.equal(await engine.waitForRun(bad), 'failed')
  assert.deepEqual(await fromRollup(engine.db), await fromScratch(engine.db))

  // Every started attempt is in the histogram once: a(2 runs) + b(3 attempts) + c(1).
  const before = await durations(engine.db)
  const total = (await readMetricCounts(engine.db)).filter((c) => c.kind === 'duration').reduce((sum, c) => sum + c.n, 0)
  const { rows: attempts } = await engine.db.query<{ n: string }>('SELECT count(*) AS n FROM cairn.attempt WHERE started_at IS NOT NULL AND ended_at IS NOT NULL')
  assert.equal(total, Number(attempts[0]!.n))
  assert.ok(total >= 5)

  // Deleting a finished run (as retention does) takes its counts out, but not its durations (cumulative).
  await engine.db.query('DELETE FROM cairn.run WHERE run_id = $1', [ok])
  assert.deepEqual(await fromRollup(engine.db), await fromScratch(engine.db))
  assert.deepEqual(await durations(engine.db), before)
  await engine.db.tx((q) => foldMetricDeltas(q))
  assert.deepEqual(await fromRollup(engine.db), await fromScratch(engine.db))
})

test('the database histogram bounds are DURATION_BUCKETS', async (t) => {
  const engine = await startTestEngine(t, { dags: {}, scheduler: false })
  for (const le of DURATION_BUCKETS) {
    const { rows } = await engine.db.query<{ at: number; above: number }>('SELECT cairn.metric_duration_le($1) AS at, cairn.metric_duration_le($1 + 0.001) AS above', [le])
    assert.equal(rows[0]!.at, le)
    const next = DURATION_BUCKETS[DURATION_BUCKETS.indexOf(le) + 1] ?? Infinity
    assert.equal(rows[0]!.above, next)
  }
})

test('/metrics leaves out workers that stopped heartbeating (killed), and reports the live ones', async (t) => {
  const engine = await startTestEngine(t, { dags: {}, scheduler: false })
  await engine.db.query(
    `INSERT INTO cairn.worker (worker_id, hostname, pid, state, slots, heartbeat_at) VALUES
       ('alive', 'h', 1, 'running', 1, clock_timestamp()),
       ('killed', 'h', 2, 'running', 1, clock_timestamp() - interval '10 minutes')`,
  )
  const text = await createWebMetrics(engine.db).render()
  assert.match(text, /cairn_worker_heartbeat_age_seconds\{worker_id="alive"/)
  assert.doesNotMatch(text, /worker_id="killed"/)
})
