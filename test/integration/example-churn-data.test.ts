/**
 * The example DAG as shipped (dags/churn_model.yaml, its feature view and the generated data in
 * dags/data) runs its data half under a real scheduler and worker. Switched on, it catches up daily
 * from start_date: every run ingests its interval's events and labels and materializes user_activity,
 * so the feature history grows a day per run; only the run of the latest interval (`run.is_latest`)
 * builds the point-in-time training set with its holdout, trains with the built-in trainer on the local
 * executor, registers the model as candidate version 1, gates it on the holdout, rolls it out to
 * production in canary steps and scores the holdout users with it.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { startTestEngine } from '../helpers/engine.ts'
import { createDatasets } from '../../engine/data/datasets.ts'
import { openDuckDb, parquetScan } from '../../engine/data/duckdb.ts'
import { createModels, sha256File } from '../../engine/models/registry.ts'

const REPO_DAGS = new URL('../../dags/', import.meta.url).pathname

function exampleFiles(): Record<string, string> {
  const files: Record<string, string> = {}
  const walk = (folder: string): void => {
    for (const name of readdirSync(folder)) {
      const path = join(folder, name)
      if (statSync(path).isDirectory()) walk(path)
      else files[relative(REPO_DAGS, path)] = readFileSync(path, 'utf8')
    }
  }
  walk(REPO_DAGS)
  // Only the churn example: the others would run beside it for nothing.
  for (const name of Object.keys(files)) if (name.endsWith('.yaml') && !name.startsWith('features/') && name !== 'churn_model.yaml') delete files[name]
  return files
}

test('churn_model: the catch-up runs build the feature history, the latest one trains on it', { timeout: 600_000 }, async (t) => {
  // 03:00 UTC on 2 December: the latest complete interval is [2026-12-01 02:00, 2026-12-02 02:00) Berlin time.
  const now = new Date('2026-12-02T03:00:00Z')
  const engine = await startTestEngine(t, {
    dags: exampleFiles(),
    inProcessWorkers: 1,
    workerNow: () => now,
    scheduler: { now: () => now, loopMs: 200, syncEveryMs: 60_000, lostAfterMs: 1e12 },
  })
  // One run per day from 2026-09-01 (start_date) to the latest interval, oldest first.
  const runId = 'churn_model__scheduled__20261201T0100Z'
  const deadline = Date.now() + 480_000
  let state: string | undefined
  while (Date.now() < deadline) {
    const { rows } = await engine.db.query<{ state: string }>(`SELECT state FROM cairn.run WHERE run_id = $1`, [runId])
    state = rows[0]?.state
    if (state === 'success' || state === 'failed') break
    await new Promise((r) => setTimeout(r, 250))
  }
  const { rows: runs } = await engine.db.query<{ state: string; n: string }>(`SELECT state, count(*)::text AS n FROM cairn.run WHERE dag_id = 'churn_model' GROUP BY state`)
  const { rows: failures } = await engine.db.query<{ run_id: string; task_id: string; state: string; message: string | null }>(
    `SELECT a.run_id, a.task_id, a.state, a.message FROM cairn.attempt a JOIN cairn.run r USING (run_id) WHERE r.dag_id = 'churn_model' AND a.state NOT IN ('success', 'skipped')`,
  )
  assert.deepEqual(Object.fromEntries(runs.map((r) => [r.state, Number(r.n)])), { success: 92 }, `Sep 1 .. Dec 1: 92 daily runs, all successful; not: ${JSON.stringify(failures)}`)
  const states = await engine.taskStates(runId)
  assert.equal(state, 'success', JSON.stringify(states))
  assert.deepEqual(states, {
    gate: 'success',
    ingest_events: 'success',
    ingest_labels: 'success',
    materialize_activity: 'success',
    rollout: 'success',
    score_users: 'success',
    train: 'success',
    training_set: 'success',
  })
  // A catch-up run did the per-day work and skipped the training.
  assert.deepEqual(await engine.taskStates('churn_model__scheduled__20261115T0100Z'), {
    gate: 'skipped',
    ingest_events: 'success',
    ingest_labels: 'success',
    materialize_activity: 'success',
    rollout: 'skipped',
    score_users: 'skipped',
    train: 'skipped',
    training_set: 'skipped',
  })

  const datasets = createDatasets({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  const events = (await datasets.get('events'))!
  const labels = (await datasets.get('churn_labels'))!
  const training = (await datasets.get('churn_training'))!
  const holdout = (await datasets.get('churn_training_holdout'))!
  // Counted independently from the CSV files: the rows of every interval so far, in UTC.
  const start = Date.parse('2026-09-01T00:00:00Z')
  const end = Date.parse('2026-12-02T01:00:00Z')
  let expected = 0
  for (const name of readdirSync(join(REPO_DAGS, 'data'))) {
    if (!name.endsWith('.csv')) continue
    for (const line of readFileSync(join(REPO_DAGS, 'data', name), 'utf8').split('\n').slice(1)) {
      const ts = Date.parse(line.split(',')[1] ?? '')
      if (ts >= start && ts < end) expected++
    }
  }
  assert.ok(expected > 0)
  assert.equal(events.rows, expected)
  const labelLines = readFileSync(join(REPO_DAGS, 'data', 'labels.jsonl'), 'utf8').trim().split('\n')
    .filter((line) => { const ts = Date.parse((JSON.parse(line) as { label_ts: string }).label_ts); return ts >= start && ts < end }).length
  assert.ok(labelLines > 0)
  assert.equal(labels.rows, labelLines, 'the labels of the intervals run so far, none from later')
  assert.equal(training.rows + holdout.rows, labelLines, 'every label row lands in the training set or its holdout')
  assert.ok(holdout.rows > labelLines * 0.1 && holdout.rows < labelLines * 0.3, `holdout of about 20%: ${holdout.rows} of ${labelLines}`)
  assert.deepEqual(
    training.columns.map((c) => c.name).filter((n) => n.startsWith('user_activity__')),
    ['user_activity__spend_7d', 'user_activity__events_1d', 'user_activity__avg_amount'],
  )

  // Every label has the features of the day before it: the history is there.
  const duck = await openDuckDb({ threads: 1 })
  try {
    const [row] = await duck.rows<{ without: string }>(
      `SELECT count(*)::VARCHAR AS without FROM ${parquetScan([...training.files, ...holdout.files])} WHERE user_activity__events_1d IS NULL`,
    )
    assert.equal(Number(row!.without), 0)
  } finally {
    duck.close()
  }

  // The train task trained on churn_training and registered version 1 of churn, which the gate passed
  // and the rollout promoted to production.
  const models = createModels({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  const model = (await models.get('churn'))!
  assert.equal(model.version, 1)
  assert.equal(model.stage, 'production')
  const { rows: gate } = await engine.db.query<{ outputs: { passed: boolean; metrics: { auc: number } } }>(`SELECT outputs FROM cairn.task_instance WHERE run_id = $1 AND task_id = 'gate'`, [runId])
  assert.equal(gate[0]!.outputs.passed, true)
  assert.ok(gate[0]!.outputs.metrics.auc >= 0.75)
  const { rows: rollout } = await engine.db.query<{ outputs: Record<string, unknown> }>(`SELECT outputs FROM cairn.task_instance WHERE run_id = $1 AND task_id = 'rollout'`, [runId])
  assert.deepEqual(rollout[0]!.outputs, { ...rollout[0]!.outputs, version: 1, stage: 'production', rolled_back: false })
  // Every holdout row scored, in order, with a probability and the version that scored it.
  const scores = (await datasets.get('churn_scores'))!
  assert.equal(scores.rows, holdout.rows)
  assert.deepEqual(scores.columns.slice(-2).map((c) => c.name), ['prediction', 'model_version'])
  assert.equal(model.taskKind, 'binary')
  assert.deepEqual(model.features, ['user_activity__spend_7d', 'user_activity__events_1d', 'user_activity__avg_amount'])
  assert.equal(await sha256File(model.path), model.sha256)
  // The generated data has a real signal, and the history is long enough to learn it.
  const auc = (model.metrics.validation as Record<string, number>).auc!
  assert.ok(auc >= 0.75, `validation AUC ${auc}`)
  assert.deepEqual(model.lineage.dataset, { name: 'churn_training', version: training.version })
  assert.deepEqual(model.lineage.feature_views?.map((f) => f.feature_view), ['user_activity'])
  assert.equal(model.lineage.run, runId)
  assert.equal(typeof model.lineage.dag_version, 'number')
  const { rows: outputs } = await engine.db.query<{ outputs: Record<string, unknown> }>(`SELECT outputs FROM cairn.task_instance WHERE run_id = $1 AND task_id = 'train'`, [runId])
  assert.equal(outputs[0]!.outputs.model_uri, 'models:/churn/1')
  assert.equal(outputs[0]!.outputs.model_version, 1)
  // The registered file is a model onnxruntime loads and runs: 3 features in, a probability out.
  const ort = await import('onnxruntime-node')
  const session = await ort.InferenceSession.create(model.path)
  const input = new ort.Tensor('float32', new Float32Array([10, 2, 5, 0, 0, 0]), [2, 3])
  const result = await session.run({ [session.inputNames[0]!]: input })
  const probabilities = result[session.outputNames[0]!]!.data as Float32Array
  assert.equal(probabilities.length, 2)
  assert.ok([...probabilities].every((p) => p >= 0 && p <= 1))
})
