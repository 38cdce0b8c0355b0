/**
 * /metrics at scale: 100,000 runs x 5 tasks (500,000 task instances, 500,000 attempts) in the database.
 *   scrape      createWebMetrics().render() (counts kept on write, migration 0010), p50/p95 over many scrapes
 *   baseline    the same figures aggregated from the whole history, as /metrics did before (the raw
 *               GROUP BY queries sent bare through pg)
 *   write cost  10,000 task-instance state changes in one statement, with the counting triggers on and
 *               with them off (session_replication_role = replica), and the fold of the resulting deltas
 * Usage: node bench/metrics.ts [--runs N]   Benchmarks print figures; they never fail on a timing.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { silentLogger } from '../engine/log.ts'
import { startEmbeddedPostgres } from '../engine/store/embedded.ts'
import { createDb } from '../engine/store/db.ts'
import { migrate } from '../engine/store/migrate.ts'
import { foldMetricDeltas } from '../engine/store/metric-rollup.ts'
import { DURATION_BUCKETS, createWebMetrics } from '../engine/web/metrics.ts'

const { values } = parseArgs({ options: { runs: { type: 'string', default: '100000' }, scrapes: { type: 'string', default: '30' } } })
const RUNS = Number(values.runs)
const SCRAPES = Number(values.scrapes)
const TASKS = 5
const log = silentLogger()

const pct = (xs: number[], p: number): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}
const summary = (xs: number[]): string => `p50 ${pct(xs, 50).toFixed(1)} ms, p95 ${pct(xs, 95).toFixed(1)} ms (n=${xs.length})`
async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now()
  await fn()
  return performance.now() - start
}

const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-metrics-'))
const pgServer = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), log, ephemeral: true })
const db = createDb(pgServer.url, { log, max: 4 })
try {
  await migrate(db, log)
  const fill = performance.now()
  await db.query(`INSERT INTO cairn.dag (dag_id) SELECT 'bench_' || d FROM generate_series(1, 10) d`)
  await db.query(`INSERT INTO cairn.dag_version (dag_id, hash, spec, source) SELECT 'bench_' || d, 'h', '{}', '' FROM generate_series(1, 10) d`)
  for (let from = 0; from < RUNS; from += 10_000) {
    const to = Math.min(RUNS, from + 10_000)
    await db.tx(async (q) => {
      await q.query(
        `INSERT INTO cairn.run (run_id, dag_id, version_id, run_type, state, logical_date, data_interval_start, data_interval_end, started_at, ended_at)
         SELECT 'r' || i, 'bench_' || (i % 10 + 1), i % 10 + 1, 'scheduled', CASE WHEN i % 7 = 0 THEN 'failed' ELSE 'success' END,
                timestamptz '2020-01-01' + i * interval '1 hour', timestamptz '2020-01-01' + i * interval '1 hour', timestamptz '2020-01-01' + (i + 1) * interval '1 hour',
                timestamptz '2020-01-01' + i * interval '1 hour', timestamptz '2020-01-01' + i * interval '1 hour' + interval '5 minutes'
           FROM generate_series($1::int, $2::int - 1) i`,
        [from, to],
      )
      await q.query(
        `INSERT INTO cairn.task_instance (run_id, task_id, state, attempt)
         SELECT 'r' || i, 't' || k, CASE WHEN i % 7 = 0 AND k = ${TASKS} THEN 'failed' ELSE 'success' END, 1
           FROM generate_series($1::int, $2::int - 1) i, generate_series(1, ${TASKS}) k`,
        [from, to],
      )
      await q.query(
        `INSERT INTO cairn.attempt (run_id, task_id, attempt, state, started_at, ended_at)
         SELECT 'r' || i, 't' || k, 1, CASE WHEN i % 7 = 0 AND k = ${TASKS} THEN 'failed' ELSE 'success' END,
                timestamptz '2020-01-01', timestamptz '2020-01-01' + ((i * k) % 4000) * interval '1 second'
           FROM generate_series($1::int, $2::int - 1) i, generate_series(1, ${TASKS}) k`,
        [from, to],
      )
    })
  }
  await db.tx((q) => foldMetricDeltas(q))
  await db.query('VACUUM ANALYZE')
  console.log(`filled ${RUNS} runs x ${TASKS} tasks (${RUNS * TASKS} task instances and attempts) in ${((performance.now() - fill) / 1000).toFixed(1)} s`)

  const metrics = createWebMetrics(db)
  const text = await metrics.render()
  const series = text.split('\n').filter((l) => l.startsWith('cairn_') && !l.startsWith('cairn_web_')).length
  const scrape: number[] = []
  for (let i = 0; i < SCRAPES; i++) scrape.push(await timed(() => metrics.render()))

  const bucketColumns = DURATION_BUCKETS.map((b) => `count(*) FILTER (WHERE d <= ${b})::text`).join(', ')
  const baseline: number[] = []
  for (let i = 0; i < Math.min(SCRAPES, 10); i++) {
    baseline.push(
      await timed(() =>
        Promise.all([
          db.query('SELECT state, count(*) AS n FROM cairn.run GROUP BY state'),
          db.query('SELECT r.dag_id, ti.task_id, ti.state, count(*) AS n FROM cairn.task_instance ti JOIN cairn.run r USING (run_id) GROUP BY 1, 2, 3'),
          db.query(`SELECT count(*) AS n FROM cairn.task_instance WHERE state = 'queued'`),
          db.query(
            `SELECT dag_id, task_id, state, count(*)::text AS n, sum(d)::float8 AS total, ARRAY[${bucketColumns}] AS buckets
               FROM (SELECT r.dag_id, a.task_id, a.state, extract(epoch FROM a.ended_at - a.started_at)::float8 AS d
                       FROM cairn.attempt a JOIN cairn.run r USING (run_id) WHERE a.started_at IS NOT NULL AND a.ended_at IS NOT NULL) x
              GROUP BY 1, 2, 3`,
          ),
        ]),
      ),
    )
  }

  // Write cost: the same 10,000-row state change with the counting triggers on and off.
  const flip = (to: string) => `UPDATE cairn.task_instance SET state = '${to}' WHERE run_id IN (SELECT 'r' || i FROM generate_series(0, 1999) i)`
  const withTriggers = await timed(() => db.query(flip('skipped')))
  const fold = await timed(() => db.tx((q) => foldMetricDeltas(q)))
  const client = await db.tx(async (q) => {
    await q.query(`SET LOCAL session_replication_role = replica`)
    return timed(() => q.query(flip('success')))
  })

  console.log(`\n/metrics at ${RUNS} runs (${series} cairn_* samples)`)
  console.log(`  scrape (counts kept on write)      ${summary(scrape)}`)
  console.log(`  baseline: aggregate whole history  ${summary(baseline)}`)
  console.log(`\nwrite cost: 10,000 task-instance state changes in one UPDATE`)
  console.log(`  counting triggers on   ${withTriggers.toFixed(1)} ms, then fold ${fold.toFixed(1)} ms`)
  console.log(`  baseline: triggers off ${client.toFixed(1)} ms`)
} finally {
  await db.close()
  await pgServer.stop()
  rmSync(dir, { recursive: true, force: true })
}
