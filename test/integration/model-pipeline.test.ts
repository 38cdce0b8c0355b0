/**
 * train -> evaluate.gate -> predict.batch in one DAG, as dags/churn_model.yaml chains them: the gate
 * reads the trained version through `{{ tasks.train.outputs.model_uri }}` with the features recorded by
 * the trainer and a boolean label, and passes with no production version yet; batch scoring takes the
 * version from `{{ tasks.train.outputs.model_version }}`. The AUC of the published predictions,
 * computed here pair by pair, equals the gate's.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { startTestEngine } from '../helpers/engine.ts'
import { logLines, taskRows, waitForDags } from '../helpers/run-rows.ts'
import { seedVersion } from '../helpers/datasets.ts'
import { pairwiseAuc } from '../helpers/model-data.ts'
import { createDatasets } from '../../engine/data/datasets.ts'
import { openDuckDb, parquetScan } from '../../engine/data/duckdb.ts'

test('train, then gate the trained version, then score with it', { timeout: 300_000 }, async (t) => {
  const engine = await startTestEngine(t, { dags: {}, inProcessWorkers: 1, scheduler: { loopMs: 200, syncEveryMs: 300 } })
  const datasets = createDatasets({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  // y when a + 2b > 0: learnable by a logistic regression in a few epochs.
  await seedVersion(datasets, 'toy', `SELECT a, b, (a + 2 * b > 0) AS y FROM (SELECT sin(i * 1.3) AS a, cos(i * 0.7) AS b FROM range(600) t(i))`)
  await seedVersion(datasets, 'toy_holdout', `SELECT i AS id, a, b, (a + 2 * b > 0) AS y FROM (SELECT i, sin(i * 1.3) AS a, cos(i * 0.7) AS b FROM range(600, 900) t(i)) ORDER BY i`)
  engine.writeDag('pipeline.yaml', `dag: pipeline
tasks:
  train:
    operator: train
    params:
      executor: local
      nodes: 1
      trainer: { dataset: toy, label: y, features: [a, b], task: binary, model: { kind: logistic }, epochs: 30, batch_size: 32, learning_rate: 0.05, seed: 3 }
      model_name: toy_model
  gate:
    operator: evaluate.gate
    depends_on: train
    params:
      model: "{{ tasks.train.outputs.model_uri }}"
      dataset: toy_holdout
      label: y
      metrics: [auc, accuracy, log_loss]
      thresholds: { auc: { min: 0.8 } }
      compare_to: production
      model_name: toy_model
      min_improvement: { auc: 0.005 }
  score:
    operator: predict.batch
    depends_on: gate
    params:
      model_name: toy_model
      version: "{{ tasks.train.outputs.model_version }}"
      dataset: toy_holdout
      output: toy_scores
`)
  await waitForDags(engine.db, ['pipeline'])
  const runId = await engine.trigger('pipeline')
  const state = await engine.waitForRun(runId, 240_000)
  const tasks = await taskRows(engine.db, runId)
  const logs = async (task: string) => (await logLines(engine.db, runId, task)).map((l) => l.line).join('\n')
  assert.equal(state, 'success', `${JSON.stringify([...tasks.values()].map((r) => [r.task_id, r.state, r.message]))}\n${await logs('gate')}\n${await logs('score')}`)
  const gate = tasks.get('gate')!.outputs as { passed: boolean; metrics: Record<string, number>; baseline_metrics: null }
  assert.equal(gate.passed, true)
  assert.equal(gate.baseline_metrics, null)
  assert.match(await logs('gate'), /features_from":"model version"/)
  assert.deepEqual(tasks.get('score')!.outputs, { dataset: 'toy_scores', version: 1, rows: 300 })

  const scores = (await datasets.get('toy_scores'))!
  const duck = await openDuckDb({ threads: 1 })
  try {
    const rows = await duck.values(`SELECT id, y, prediction, model_version FROM ${parquetScan(scores.files)}`)
    assert.deepEqual(rows.map((r) => Number(r[0])), Array.from({ length: 300 }, (_, i) => 600 + i))
    assert.ok(rows.every((r) => r[3] === 1n))
    const auc = pairwiseAuc(rows.map((r) => r[2] as number), rows.map((r) => (r[1] ? 1 : 0)))
    assert.ok(Math.abs(auc - gate.metrics.auc!) < 1e-12, `${auc} vs the gate's ${gate.metrics.auc}`)
  } finally {
    duck.close()
  }
})
