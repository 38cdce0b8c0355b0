/**
 * Feature views through the whole engine: the feature view file in the DAG folder is stored by the
 * scheduler's sync, `features.materialize` tasks of scheduled runs materialize each data interval
 * end, backfills over overlapping ranges (as `cairn backfill` creates them) give exactly the
 * scheduled runs' rows and never duplicate an interval, a manual run materializes as of its trigger
 * time, and `features.training_set` publishes its dataset and holdout with lineage.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { createDatasets } from '../../engine/data/datasets.ts'
import { openDuckDb, sqlString } from '../../engine/data/duckdb.ts'
import { getDag, getDagVersion } from '../../engine/store/dags.ts'
import type { Db } from '../../engine/store/db.ts'
import { listMaterializations } from '../../engine/store/feature-materializations.ts'
import { countOnlineRows } from '../../engine/store/feature-online.ts'
import { createRun } from '../../engine/store/runs.ts'
import { startTestEngine } from '../helpers/engine.ts'
import { taskRows } from '../helpers/run-rows.ts'
import { waitFor } from '../helpers/engine-extra.ts'

const VIEW = `feature_view: activity
entity: [user_id]
source: events
timestamp: ts
ttl: 3d
online: true
features:
  spend_1d: { agg: sum, column: amount, window: 1d }
  events_2d: { agg: count, window: 2d }
  last_country: { agg: last, column: country }
`

const dag = (id: string, catchup: string) => `dag: ${id}
schedule: "@daily"
start_date: 2026-01-01
catchup: ${catchup}
max_active_runs: 3
tasks:
  materialize:
    operator: features.materialize
    params: { feature_view: activity }
`

const NOW = new Date('2026-01-05T00:30:00Z')

const until = <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120_000) => waitFor(what, check, timeoutMs, 100)

async function runsOf(db: Db, dagId: string): Promise<{ run_id: string; state: string; data_interval_end: Date }[]> {
  return (await db.query<{ run_id: string; state: string; data_interval_end: Date }>(
    'SELECT run_id, state, data_interval_end FROM cairn.run WHERE dag_id = $1 ORDER BY data_interval_end', [dagId],
  )).rows
}

async function allDone(db: Db, dagId: string, count: number): Promise<{ run_id: string; state: string; data_interval_end: Date }[] | undefined> {
  const runs = await runsOf(db, dagId)
  return runs.length === count && runs.every((r) => r.state === 'success' || r.state === 'failed') ? runs : undefined
}

/** As `cairn backfill DAG --from --to` creates them: one backfill run per daily interval (existing dates skipped). */
async function backfill(db: Db, dagId: string, fromDay: string, toDay: string): Promise<number> {
  const row = (await getDag(db, dagId))!
  const spec = await getDagVersion(db, row.versionId!)
  let created = 0
  for (let day = new Date(`${fromDay}T00:00:00Z`); day.getTime() <= new Date(`${toDay}T00:00:00Z`).getTime(); day = new Date(day.getTime() + 86_400_000)) {
    const run = await db.tx((q) => createRun(q, { dag: spec, versionId: row.versionId!, runType: 'backfill', logicalDate: day, dataIntervalStart: day, dataIntervalEnd: new Date(day.getTime() + 86_400_000), params: {} }))
    if (run) created++
  }
  await db.query(`SELECT pg_notify('cairn_wake', $1)`, [dagId])
  return created
}

/** Offline rows per interval end, each interval's rows sorted, as JSON text (exact comparison). */
async function offlineByEnd(db: Db, dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const duck = await openDuckDb({ threads: 1 })
  try {
    for (const m of await listMaterializations(db, 'activity')) {
      const rows = await duck.rows(`SELECT * FROM read_parquet(${sqlString(join(dir, m.location, 'part-0.parquet'))}) ORDER BY user_id`)
      out.set(m.intervalEnd.toISOString(), JSON.stringify(rows))
    }
  } finally {
    duck.close()
  }
  return out
}

test('scheduled runs, overlapping backfills and a manual run materialize a view; a training set joins it', async (t) => {
  const engine = await startTestEngine(t, { dags: { 'features/activity.yaml': VIEW }, inProcessWorkers: 1, scheduler: { now: () => NOW } })
  const { db } = engine
  // The source, as an ingest would have published it.
  const seed = createDatasets({ db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  const staged = await seed.stage('events')
  const duck = await openDuckDb({ threads: 1 })
  await duck.run(`COPY (SELECT 'u' || (i % 7) AS user_id, TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL (i * 37) MINUTE AS ts,
      (i % 13)::DOUBLE AS amount, CASE WHEN i % 3 = 0 THEN 'DE' ELSE 'FR' END AS country FROM range(400) t(i))
    TO ${sqlString(join(staged.dir, 'part-0.parquet'))} (FORMAT parquet)`)
  duck.close()
  await seed.publish([{ staged, producedKind: 'import' }])
  await until('the feature view to be stored', async () => ((await db.query('SELECT 1 FROM cairn.feature_view WHERE name = $1', ['activity'])).rows[0] ? true : undefined))

  // Scheduled: catchup all from Jan 1 with "now" at Jan 5 00:30 = four daily intervals, ends Jan 2..5.
  engine.writeDag('sched.yaml', dag('sched', 'all'))
  const scheduled = await until('the scheduled runs', () => allDone(db, 'sched', 4))
  assert.deepEqual(scheduled.map((r) => r.state), ['success', 'success', 'success', 'success'])
  const tasks = await taskRows(db, scheduled[3]!.run_id)
  assert.deepEqual(tasks.get('materialize')!.outputs, { feature_view: 'activity', version: 1, rows_offline: 7, rows_online: 7 })
  const fromSchedule = await offlineByEnd(db, engine.data.dir)
  assert.deepEqual([...fromSchedule.keys()], ['2026-01-02T00:00:00.000Z', '2026-01-03T00:00:00.000Z', '2026-01-04T00:00:00.000Z', '2026-01-05T00:00:00.000Z'])

  // Two more DAGs backfill overlapping ranges of the same view (catchup none: each also runs the latest interval).
  engine.writeDag('again.yaml', dag('again', 'none'))
  engine.writeDag('third.yaml', dag('third', 'none'))
  await until('the new DAGs', async () => ((await db.query(`SELECT count(*)::int AS n FROM cairn.dag WHERE dag_id IN ('again', 'third') AND version_id IS NOT NULL`)).rows[0]!.n === 2 ? true : undefined))
  assert.ok((await backfill(db, 'again', '2026-01-01', '2026-01-03')) >= 3)
  assert.ok((await backfill(db, 'third', '2026-01-02', '2026-01-04')) >= 2)
  const againRuns = await until('the first backfill', async () => {
    const runs = await runsOf(db, 'again')
    return runs.length >= 3 && runs.every((r) => r.state === 'success' || r.state === 'failed') ? runs : undefined
  })
  const thirdRuns = await until('the second backfill', async () => {
    const runs = await runsOf(db, 'third')
    return runs.length >= 3 && runs.every((r) => r.state === 'success' || r.state === 'failed') ? runs : undefined
  })
  assert.ok([...againRuns, ...thirdRuns].every((r) => r.state === 'success'))
  const afterBackfills = await offlineByEnd(db, engine.data.dir)
  assert.deepEqual(afterBackfills, fromSchedule, 'the backfills wrote exactly the scheduled runs\' rows, one set per interval end')
  assert.equal((await listMaterializations(db, 'activity')).length, 4)
  assert.equal(await countOnlineRows(db, 'activity'), 7)
  const online = await db.query<{ feature_timestamp: Date }>(`SELECT DISTINCT feature_timestamp FROM cairn.feature_online WHERE view = 'activity'`)
  assert.deepEqual(online.rows.map((r) => r.feature_timestamp.toISOString()), ['2026-01-05T00:00:00.000Z'], 'the online store keeps the newest interval')

  // A manual run: start = end = its trigger time, materialized as of then.
  const manual = await engine.trigger('sched')
  assert.equal(await engine.waitForRun(manual, 60_000), 'success')
  const run = (await db.query<{ data_interval_end: Date }>('SELECT data_interval_end FROM cairn.run WHERE run_id = $1', [manual])).rows[0]!
  const last = (await listMaterializations(db, 'activity')).at(-1)!
  assert.equal(last.intervalEnd.getTime(), run.data_interval_end.getTime())
  assert.equal(last.runId, manual)

  // A training set over labels, through the operator: outputs, holdout, lineage.
  const labels = await seed.stage('labels')
  const duck2 = await openDuckDb({ threads: 1 })
  await duck2.run(`COPY (SELECT 'u' || (i % 9) AS user_id, TIMESTAMPTZ '2026-01-02 00:00:00+00' + INTERVAL (i * 5) HOUR AS label_ts, i % 2 = 0 AS churned FROM range(40) t(i))
    TO ${sqlString(join(labels.dir, 'part-0.parquet'))} (FORMAT parquet)`)
  duck2.close()
  await seed.publish([{ staged: labels, producedKind: 'import' }])
  engine.writeDag('train.yaml', `dag: train_set
tasks:
  training_set:
    operator: features.training_set
    params:
      labels: labels
      timestamp: label_ts
      label: churned
      features: [activity.spend_1d, activity]
      dataset: churn_training
      split: { holdout: 0.25, seed: 7 }
`)
  await until('the training DAG', async () => ((await db.query(`SELECT 1 FROM cairn.dag WHERE dag_id = 'train_set' AND version_id IS NOT NULL`)).rows[0] ? true : undefined))
  const trainRun = await engine.trigger('train_set')
  assert.equal(await engine.waitForRun(trainRun, 60_000), 'success', JSON.stringify(Object.fromEntries(await taskRows(db, trainRun))))
  const outputs = (await taskRows(db, trainRun)).get('training_set')!.outputs!
  assert.equal(outputs.dataset, 'churn_training')
  assert.equal(outputs.holdout_dataset, 'churn_training_holdout')
  assert.equal(Number(outputs.rows) + Number(outputs.holdout_rows), 40)
  const version = (await seed.get('churn_training'))!
  assert.deepEqual(version.columns.map((c) => c.name), ['user_id', 'label_ts', 'churned', 'activity__spend_1d', 'activity__events_2d', 'activity__last_country'])
  assert.deepEqual(version.inputs, [{ dataset: 'labels', version: 1 }, { feature_view: 'activity', definition_version: 1 }])
  assert.equal(version.runId, trainRun)
})
