/**
 * evaluate.drift through a real scheduler and worker: a dataset compared with a model version's training
 * set (from the registry's lineage) and with another dataset version. Expected figures are computed in
 * the test from the same rows, independently of the operator (its own binning, sorting and counting).
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestEngine } from '../helpers/engine.ts'
import type { TestEngine } from '../helpers/engine.ts'
import { createDatasets } from '../../engine/data/datasets.ts'
import { createModels } from '../../engine/models/registry.ts'
import { seedVersion } from '../helpers/datasets.ts'

const DAG = `
dag: drift
params:
  current: { type: string, default: scores }
tasks:
  against_model:
    operator: evaluate.drift
    params: { dataset: "{{ params.current }}", model: "models:/churn/production", bins: 4 }
  against_dataset:
    operator: evaluate.drift
    params:
      dataset: "{{ params.current }}"
      reference: training@1
      features: [amount, country]
      thresholds: { psi: 0.1, ks: 0.3, chi2_p_value: 0.05 }
  retrain:
    operator: noop
    depends_on: against_model
    when: "{{ tasks.against_model.outputs.drifted }}"
`

/** Reference: amount 0..99 uniformly, country DE/FR half each. */
const REFERENCE = `SELECT (i % 100)::DOUBLE AS amount, CASE WHEN i % 2 = 0 THEN 'DE' ELSE 'FR' END AS country FROM range(400) t(i)`

function expectedPsi(reference: number[], current: number[], bins: number): number {
  const sorted = [...reference].sort((a, b) => a - b)
  const edges: number[] = []
  for (let i = 1; i < bins; i++) {
    const v = sorted[Math.floor((i * sorted.length) / bins)]!
    if (v > sorted[0]! && (edges.length === 0 || v > edges.at(-1)!)) edges.push(v)
  }
  const share = (values: number[], lo: number, hi: number): number => Math.max(values.filter((v) => v >= lo && v < hi).length / values.length, 1e-4)
  const bounds = [-Infinity, ...edges, Infinity]
  let sum = 0
  for (let b = 0; b + 1 < bounds.length; b++) {
    const r = share(reference, bounds[b]!, bounds[b + 1]!)
    const c = share(current, bounds[b]!, bounds[b + 1]!)
    sum += (c - r) * Math.log(c / r)
  }
  return sum
}

test('evaluate.drift: no drift on the same distribution, drift on a shifted one, and when: retrains only then', { timeout: 240_000 }, async (t) => {
  const engine = await startTestEngine(t, { dags: { 'drift.yaml': DAG }, inProcessWorkers: 1 })
  const datasets = createDatasets({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  await seedVersion(datasets, 'training', REFERENCE)
  const file = join(mkdtempSync(join(tmpdir(), 'cairn-drift-')), 'model.onnx')
  writeFileSync(file, 'not read by evaluate.drift')
  const models = createModels({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  const { version } = await models.register({ name: 'churn', file, features: ['amount'], dataset: { name: 'training', version: 1 } })
  await models.setStage('churn', version.version, 'production', { user: 'test' })

  // Same distribution, other rows order: nothing drifts, retrain is skipped.
  await seedVersion(datasets, 'scores', `SELECT ((i * 7) % 100)::DOUBLE AS amount, CASE WHEN i % 2 = 1 THEN 'DE' ELSE 'FR' END AS country FROM range(200) t(i)`)
  const calm = await engine.trigger('drift')
  assert.equal(await engine.waitForRun(calm, 120_000), 'success')
  const calmOutputs = await outputsOf(engine, calm)
  assert.equal(calmOutputs.against_model!.drifted, false)
  assert.equal(calmOutputs.against_dataset!.drifted, false)
  assert.deepEqual(calmOutputs.against_model!.reference, { dataset: 'training', version: 1, model: 'churn', model_version: 1 })
  assert.deepEqual(Object.keys(calmOutputs.against_model!.features as object), ['amount'], "the model's features by default")
  assert.equal((await engine.taskStates(calm)).retrain, 'skipped')

  // Shifted amounts (50..149) and mostly FR: both drift, and retrain runs.
  await seedVersion(datasets, 'scores', `SELECT (50 + i % 100)::DOUBLE AS amount, CASE WHEN i % 5 = 0 THEN 'DE' ELSE 'FR' END AS country FROM range(200) t(i)`)
  const shifted = await engine.trigger('drift')
  assert.equal(await engine.waitForRun(shifted, 120_000), 'success')
  const outputs = await outputsOf(engine, shifted)
  assert.equal(outputs.against_model!.drifted, true)
  assert.equal((await engine.taskStates(shifted)).retrain, 'success')
  const byDataset = outputs.against_dataset as { drifted: boolean; drifted_features: string[]; features: Record<string, any> }
  assert.deepEqual(byDataset.drifted_features, ['amount', 'country'])

  // The figures, computed here from the same rows.
  const reference = Array.from({ length: 400 }, (_, i) => i % 100)
  const current = Array.from({ length: 200 }, (_, i) => 50 + (i % 100))
  const amount = byDataset.features.amount
  assert.ok(Math.abs(amount.psi - expectedPsi(reference, current, 10)) < 1e-9, `psi ${amount.psi}`)
  // Largest CDF gap: at x = 49 the reference has 50% at or below, the current 0%.
  assert.ok(Math.abs(amount.ks - 0.5) < 1e-12, `ks ${amount.ks}`)
  assert.ok(Math.abs((outputs.against_model!.features as any).amount.psi - expectedPsi(reference, current, 4)) < 1e-9)
  // Country: reference 200 DE / 200 FR, current 40 DE / 160 FR. Chi-squared of the 2 x 2 table by hand.
  const table = [[200, 200], [40, 160]]
  const total = 600
  let chi2 = 0
  for (let r = 0; r < 2; r++) for (let c = 0; c < 2; c++) {
    const expected = ((table[r]![0]! + table[r]![1]!) * (table[0]![c]! + table[1]![c]!)) / total
    chi2 += (table[r]![c]! - expected) ** 2 / expected
  }
  assert.ok(Math.abs(byDataset.features.country.chi2 - chi2) < 1e-9, `chi2 ${byDataset.features.country.chi2} vs ${chi2}`)
  assert.equal(byDataset.features.country.dof, 1)
  assert.ok(byDataset.features.country.p_value < 0.05)
  assert.deepEqual(byDataset.features.country.histogram.categories, ['FR', 'DE'])

  // Nulls are left out of the statistics and reported as each side's share: 50 of 200 amounts, 40 of 200 countries.
  await seedVersion(datasets, 'scores', `SELECT CASE WHEN i % 4 = 0 THEN NULL ELSE (i % 100)::DOUBLE END AS amount, CASE WHEN i % 5 = 0 THEN NULL WHEN i % 2 = 0 THEN 'DE' ELSE 'FR' END AS country FROM range(200) t(i)`)
  const withNulls = await engine.trigger('drift')
  assert.equal(await engine.waitForRun(withNulls, 120_000), 'success')
  const nullFeatures = ((await outputsOf(engine, withNulls)).against_dataset as { features: Record<string, { null_fraction: number[]; rows: number[] }> }).features
  const near = (actual: number[], expected: number[]): void => assert.ok(actual.every((a, i) => Math.abs(a - expected[i]!) < 1e-12), `${actual} vs ${expected}`)
  near(nullFeatures.amount!.null_fraction, [0, 50 / 200])
  assert.deepEqual(nullFeatures.amount!.rows, [400, 150])
  near(nullFeatures.country!.null_fraction, [0, 40 / 200])
  assert.deepEqual(nullFeatures.country!.rows, [400, 160])
})

test('evaluate.drift: a feature missing from a side, or a model without a training set, fails clearly without retry', { timeout: 240_000 }, async (t) => {
  const engine = await startTestEngine(t, {
    dags: {
      'bad.yaml': `
dag: bad
tasks:
  missing_column:
    operator: evaluate.drift
    retries: 3
    params: { dataset: scores, reference: training, features: [amount, tenure] }
  no_lineage:
    operator: evaluate.drift
    retries: 3
    params: { dataset: scores, model: "models:/imported/1" }
`,
    },
    inProcessWorkers: 1,
  })
  const datasets = createDatasets({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  await seedVersion(datasets, 'training', REFERENCE)
  await seedVersion(datasets, 'scores', `SELECT 1.0::DOUBLE AS amount`)
  const file = join(mkdtempSync(join(tmpdir(), 'cairn-drift-')), 'model.onnx')
  writeFileSync(file, 'x')
  const models = createModels({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  await models.register({ name: 'imported', file })
  const run = await engine.trigger('bad')
  assert.equal(await engine.waitForRun(run, 120_000), 'failed')
  const { rows } = await engine.db.query<{ task_id: string; attempts: string; message: string }>(
    `SELECT a.task_id, count(*)::text AS attempts, max(a.message) AS message FROM cairn.attempt a WHERE a.run_id = $1 GROUP BY a.task_id ORDER BY 1`,
    [run],
  )
  assert.deepEqual(rows.map((r) => [r.task_id, r.attempts]), [['missing_column', '1'], ['no_lineage', '1']])
  assert.match(rows[0]!.message, /feature tenure missing from the reference training@1 or scores@1/)
  assert.match(rows[1]!.message, /records no training set/)
})

async function outputsOf(engine: TestEngine, runId: string): Promise<Record<string, Record<string, unknown>>> {
  const { rows } = await engine.db.query<{ task_id: string; outputs: Record<string, unknown> | null }>(`SELECT task_id, outputs FROM cairn.task_instance WHERE run_id = $1`, [runId])
  return Object.fromEntries(rows.map((r) => [r.task_id, r.outputs ?? {}]))
}
