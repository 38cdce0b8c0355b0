/**
 * The churn example as shipped (dags/churn_data.yaml, dags/churn_model.yaml, their feature view) under
 * a real scheduler and worker, on a frozen clock moved forward in three steps: continuous training with
 * nobody involved.
 *
 * 1. 2 December: churn_data catches up daily from start_date (each run ingests its interval's events
 *    and labels and materializes user_activity; only the latest builds the training set). The new
 *    training set starts churn_model (data-aware): no model is in production, which counts as drift, so
 *    it trains version 1, gates it, rolls it out to production and scores the holdout users.
 * 2. 19 December: 17 more days of the same behaviour. The new training set starts churn_model again;
 *    the online features have not drifted from version 1's training set, so nothing is retrained.
 * 3. 20 February: the data now has drift injected from 20 December on (the generator's --drift-from;
 *    the data before it is byte for byte the data shipped in dags/data). churn_model sees the drift,
 *    retrains on the last 60 days' labels, and version 2 beats version 1 on the holdout and is promoted
 *    by the canary rollout.
 * The only change to the DAG files: the rollout's 20 s steps become 2 s, to keep the test short.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { startTestEngine } from '../helpers/engine.ts'
import type { TestEngine } from '../helpers/engine.ts'
import { createDatasets } from '../../engine/data/datasets.ts'
import { openDuckDb, parquetScan } from '../../engine/data/duckdb.ts'
import { createModels, sha256File } from '../../engine/models/registry.ts'

const REPO_DAGS = new URL('../../dags/', import.meta.url).pathname
const GENERATOR = new URL('../../scripts/generate-example-data.ts', import.meta.url).pathname
const DRIFT_FROM = '2026-12-20'
const DAY = 86_400_000

function readTree(root: string): Record<string, string> {
  const files: Record<string, string> = {}
  const walk = (folder: string): void => {
    for (const name of readdirSync(folder)) {
      const path = join(folder, name)
      if (statSync(path).isDirectory()) walk(path)
      else files[relative(root, path)] = readFileSync(path, 'utf8')
    }
  }
  walk(root)
  return files
}

/** The churn example's files; the other examples would run beside it for nothing. */
function exampleFiles(data: Record<string, string>): Record<string, string> {
  const files = readTree(REPO_DAGS)
  for (const name of Object.keys(files)) {
    if (name.endsWith('.yaml') && !name.startsWith('features/') && !name.startsWith('churn_')) delete files[name]
    if (name.startsWith('data/')) delete files[name]
  }
  for (const [name, text] of Object.entries(data)) files[`data/${name}`] = text
  files['churn_model.yaml'] = files['churn_model.yaml']!.replace('step_duration: 20s', 'step_duration: 2s')
  assert.match(files['churn_model.yaml']!, /step_duration: 2s/)
  return files
}

interface RunRow { run_id: string; state: string; run_type: string }

async function runsOf(engine: TestEngine, dagId: string): Promise<RunRow[]> {
  const { rows } = await engine.db.query<RunRow>(`SELECT run_id, state, run_type FROM cairn.run WHERE dag_id = $1 ORDER BY logical_date, run_id`, [dagId])
  return rows
}

/** Waits until `dagId` has `count` runs, all finished; fails with the unfinished ones and failed attempts. */
async function waitForRuns(engine: TestEngine, dagId: string, count: number, timeoutMs: number): Promise<RunRow[]> {
  const deadline = Date.now() + timeoutMs
  let runs: RunRow[] = []
  while (Date.now() < deadline) {
    runs = await runsOf(engine, dagId)
    if (runs.length >= count && runs.every((r) => r.state === 'success' || r.state === 'failed')) break
    await new Promise((r) => setTimeout(r, 250))
  }
  const { rows: failures } = await engine.db.query(
    `SELECT a.run_id, a.task_id, a.state, a.message FROM cairn.attempt a JOIN cairn.run r USING (run_id) WHERE r.dag_id = $1 AND a.state NOT IN ('success', 'skipped')`, [dagId])
  assert.equal(runs.length, count, `${dagId}: ${runs.length} runs, expected ${count}`)
  assert.ok(runs.every((r) => r.state === 'success'), `${dagId}: ${JSON.stringify(runs.filter((r) => r.state !== 'success'))}; attempts not successful: ${JSON.stringify(failures)}`)
  return runs
}

async function outputsOf(engine: TestEngine, runId: string, taskId: string): Promise<Record<string, unknown>> {
  const { rows } = await engine.db.query<{ outputs: Record<string, unknown> }>(`SELECT outputs FROM cairn.task_instance WHERE run_id = $1 AND task_id = $2`, [runId, taskId])
  return rows[0]!.outputs
}

async function attemptsOf(engine: TestEngine, dagId: string): Promise<Record<string, number>> {
  const { rows } = await engine.db.query<{ task_id: string; n: number }>(
    `SELECT a.task_id, count(*)::int AS n FROM cairn.attempt a JOIN cairn.run r USING (run_id) WHERE r.dag_id = $1 AND a.state <> 'skipped' GROUP BY 1 ORDER BY 1`, [dagId])
  return Object.fromEntries(rows.map((r) => [r.task_id, r.n]))
}

test('the churn example: catch-up, first model to production, no retraining without drift, retraining and promotion on drift', { timeout: 900_000 }, async (t) => {
  // The data with drift from DRIFT_FROM on, generated as a user would; before it, the shipped data.
  const out = mkdtempSync(join(tmpdir(), 'cairn-churn-drift-'))
  t.after(() => rmSync(out, { recursive: true, force: true }))
  execFileSync(process.execPath, [GENERATOR, '--drift-from', DRIFT_FROM, '--out', out], { stdio: 'ignore' })
  const drifted = readTree(out)
  const shipped = readTree(join(REPO_DAGS, 'data'))
  assert.deepEqual(Object.keys(drifted).sort(), Object.keys(shipped).sort())
  for (const name of Object.keys(shipped)) {
    const before = (text: string): string => text.split('\n').filter((line) => !/,20(2[7-9]|26-12-(2\d|3\d))/.test(line) && !line.includes('"label_ts":"2027')).join('\n')
    assert.equal(before(drifted[name]!), before(shipped[name]!), `${name}: the data before ${DRIFT_FROM} is the shipped data`)
  }
  assert.notEqual(drifted['events-2027-01.csv'], shipped['events-2027-01.csv'], 'the drift changes the data after it')

  let now = new Date('2026-12-02T03:00:00Z')
  const engine = await startTestEngine(t, {
    dags: exampleFiles(drifted),
    inProcessWorkers: 1,
    workerNow: () => now,
    scheduler: { now: () => now, loopMs: 200, syncEveryMs: 60_000, lostAfterMs: 1e12 },
  })
  const datasets = createDatasets({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  const models = createModels({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })

  // ---- 1. 2 December, 03:00 UTC: the latest complete interval is [Dec 1 02:00, Dec 2 02:00) Berlin time.
  const data1 = await waitForRuns(engine, 'churn_data', 92, 480_000)
  assert.ok(data1.every((r) => r.run_type === 'scheduled'))
  const latest1 = 'churn_data__scheduled__20261201T0100Z'
  assert.equal(data1.at(-1)!.run_id, latest1, 'one run per day from start_date (Sep 1) to Dec 1')
  assert.deepEqual(await engine.taskStates(latest1), { ingest_events: 'success', ingest_labels: 'success', materialize_activity: 'success', training_set: 'success' })
  // A catch-up run did the per-day work and skipped the training set.
  assert.deepEqual(await engine.taskStates('churn_data__scheduled__20261115T0100Z'), { ingest_events: 'success', ingest_labels: 'success', materialize_activity: 'success', training_set: 'skipped' })

  const model1 = await waitForRuns(engine, 'churn_model', 1, 240_000)
  assert.equal(model1[0]!.run_type, 'dataset', 'started by the new training set')
  const first = model1[0]!.run_id
  assert.deepEqual(await engine.taskStates(first), { drift: 'success', gate: 'success', rollout: 'success', score_users: 'success', train: 'success' })
  const drift1 = await outputsOf(engine, first, 'drift')
  assert.equal(drift1.drifted, true)
  assert.match(String(drift1.reason), /no production version of model churn/)

  const events = (await datasets.get('events'))!
  const labels = (await datasets.get('churn_labels'))!
  const training = (await datasets.get('churn_training'))!
  const holdout = (await datasets.get('churn_training_holdout'))!
  // Counted independently from the CSV files: the rows of every interval so far, in UTC.
  const start = Date.parse('2026-09-01T00:00:00Z')
  const end = Date.parse('2026-12-02T01:00:00Z')
  let expectedEvents = 0
  for (const [name, text] of Object.entries(shipped)) {
    if (!name.endsWith('.csv')) continue
    for (const line of text.split('\n').slice(1)) {
      const ts = Date.parse(line.split(',')[1] ?? '')
      if (ts >= start && ts < end) expectedEvents++
    }
  }
  assert.ok(expectedEvents > 0)
  assert.equal(events.rows, expectedEvents)
  const labelTimes = shipped['labels.jsonl']!.trim().split('\n').map((line) => Date.parse((JSON.parse(line) as { label_ts: string }).label_ts))
  assert.equal(labels.rows, labelTimes.filter((ts) => ts >= start && ts < end).length, 'the labels of the intervals run so far, none from later')
  const inWindow = labelTimes.filter((ts) => ts >= end - 60 * DAY && ts < end).length
  assert.ok(inWindow > 0 && inWindow < labels.rows, `${inWindow} of ${labels.rows} labels in the last 60 days`)
  assert.equal(training.rows + holdout.rows, inWindow, 'every label of the last 60 days lands in the training set or its holdout, no other')
  assert.ok(holdout.rows > inWindow * 0.1 && holdout.rows < inWindow * 0.3, `holdout of about 20%: ${holdout.rows} of ${inWindow}`)
  assert.deepEqual(training.columns.map((c) => c.name).filter((n) => n.startsWith('user_activity__')), ['user_activity__spend_7d', 'user_activity__events_1d', 'user_activity__avg_amount'])
  // Every label has the features of the day before it: the history is there.
  const duck = await openDuckDb({ threads: 1 })
  try {
    const [row] = await duck.rows<{ without: string }>(`SELECT count(*)::VARCHAR AS without FROM ${parquetScan([...training.files, ...holdout.files])} WHERE user_activity__events_1d IS NULL`)
    assert.equal(Number(row!.without), 0)
  } finally {
    duck.close()
  }

  // Version 1: trained on that training set, passed the gate, promoted, scored the holdout.
  const v1 = (await models.get('churn'))!
  assert.equal(v1.version, 1)
  assert.equal(v1.stage, 'production')
  assert.equal(v1.taskKind, 'binary')
  assert.deepEqual(v1.features, ['user_activity__spend_7d', 'user_activity__events_1d', 'user_activity__avg_amount'])
  assert.equal(await sha256File(v1.path), v1.sha256)
  assert.deepEqual(v1.lineage.dataset, { name: 'churn_training', version: training.version })
  assert.deepEqual(v1.lineage.feature_views?.map((f) => f.feature_view), ['user_activity'])
  assert.equal(v1.lineage.run, first)
  const auc1 = (v1.metrics.validation as Record<string, number>).auc!
  assert.ok(auc1 >= 0.75, `the generated data has a real signal: validation AUC ${auc1}`)
  const gate1 = await outputsOf(engine, first, 'gate') as { passed: boolean; metrics: { auc: number } }
  assert.equal(gate1.passed, true)
  assert.ok(gate1.metrics.auc >= 0.75)
  assert.deepEqual(await outputsOf(engine, first, 'rollout'), { ...await outputsOf(engine, first, 'rollout'), version: 1, stage: 'production', rolled_back: false })
  assert.deepEqual(await outputsOf(engine, first, 'train'), { ...await outputsOf(engine, first, 'train'), model_uri: 'models:/churn/1', model_version: 1 })
  const scores1 = (await datasets.get('churn_scores'))!
  assert.equal(scores1.rows, holdout.rows)
  assert.deepEqual(scores1.columns.slice(-2).map((c) => c.name), ['prediction', 'model_version'])
  // The registered file is a model onnxruntime loads and runs: 3 features in, a probability out.
  const ort = await import('onnxruntime-node')
  const session = await ort.InferenceSession.create(v1.path)
  const result = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', new Float32Array([10, 2, 5, 0, 0, 0]), [2, 3]) })
  const probabilities = result[session.outputNames[0]!]!.data as Float32Array
  assert.equal(probabilities.length, 2)
  assert.ok([...probabilities].every((p) => p >= 0 && p <= 1))

  // ---- 2. 19 December: more of the same behaviour. Checked, not retrained.
  now = new Date('2026-12-19T03:00:00Z')
  await waitForRuns(engine, 'churn_data', 92 + 17, 240_000)
  const model2 = await waitForRuns(engine, 'churn_model', 2, 240_000)
  const second = model2[1]!.run_id
  assert.deepEqual(await engine.taskStates(second), { drift: 'success', gate: 'skipped', rollout: 'skipped', score_users: 'success', train: 'skipped' })
  const drift2 = await outputsOf(engine, second, 'drift') as { drifted: boolean; features: Record<string, { psi: number }>; reference: { model_version: number }; current: { rows: number } }
  const psiOf = (features: Record<string, { psi: number }>): string => Object.entries(features).map(([name, f]) => `${name.replace('user_activity__', '')} ${f.psi.toFixed(3)}`).join(', ')
  t.diagnostic(`Dec 19, no drift: PSI ${psiOf(drift2.features)}`)
  assert.equal(drift2.drifted, false, `no drift: ${JSON.stringify(drift2.features, (k, v) => (k === 'histogram' ? undefined : v))}`)
  assert.equal(drift2.reference.model_version, 1, 'compared with the training set of the model in production')
  assert.equal(drift2.current.rows, 200, 'every user, as the online store serves them')
  assert.deepEqual((await models.versions('churn')).map((v) => [v.version, v.stage]), [[1, 'production']], 'no new model version')
  const scores2 = (await datasets.get('churn_scores'))!
  assert.equal(scores2.version, scores1.version + 1, 'the new holdout scored by version 1')

  // ---- 3. 20 February: two months of drifted behaviour. Detected, retrained, promoted.
  now = new Date('2027-02-20T03:00:00Z')
  const data3 = await waitForRuns(engine, 'churn_data', 92 + 17 + 63, 480_000)
  assert.equal(data3.at(-1)!.run_id, 'churn_data__scheduled__20270219T0100Z')
  const model3 = await waitForRuns(engine, 'churn_model', 3, 300_000)
  const third = model3[2]!.run_id
  assert.deepEqual(await engine.taskStates(third), { drift: 'success', gate: 'success', rollout: 'success', score_users: 'success', train: 'success' })
  const drift3 = await outputsOf(engine, third, 'drift') as { drifted: boolean; drifted_features: string[]; features: Record<string, { psi: number }> }
  t.diagnostic(`Feb 20, drift: PSI ${psiOf(drift3.features)}`)
  assert.equal(drift3.drifted, true)
  assert.ok(drift3.drifted_features.includes('user_activity__avg_amount'), JSON.stringify(drift3.drifted_features))
  const gate3 = await outputsOf(engine, third, 'gate') as { passed: boolean; metrics: { auc: number }; baseline_metrics: { auc: number } }
  t.diagnostic(`Feb 20 holdout: version 2 AUC ${gate3.metrics.auc.toFixed(3)}, version 1 AUC ${gate3.baseline_metrics.auc.toFixed(3)}; version 1's validation AUC on Dec 2 ${auc1.toFixed(3)}`)
  assert.equal(gate3.passed, true)
  assert.ok(gate3.metrics.auc >= gate3.baseline_metrics.auc + 0.005, `version 2 beats version 1 on the new holdout: ${gate3.metrics.auc} vs ${gate3.baseline_metrics.auc}`)
  const v2 = (await models.get('churn'))!
  assert.equal(v2.version, 2)
  assert.equal(v2.stage, 'production')
  assert.equal(v2.lineage.run, third)
  assert.deepEqual((await models.versions('churn')).map((v) => [v.version, v.stage]).sort(), [[1, 'archived'], [2, 'production']], 'version 1 retired by the promotion')
  assert.deepEqual(await outputsOf(engine, third, 'rollout'), { ...await outputsOf(engine, third, 'rollout'), version: 2, stage: 'production', rolled_back: false })

  // Exactly once: no task ran twice, and the drift check ran once per new training set.
  assert.deepEqual(await attemptsOf(engine, 'churn_model'), { drift: 3, gate: 2, rollout: 2, score_users: 3, train: 2 })
  const dataAttempts = await attemptsOf(engine, 'churn_data')
  assert.deepEqual(dataAttempts, { ingest_events: 172, ingest_labels: 172, materialize_activity: 172, training_set: 3 })
})
