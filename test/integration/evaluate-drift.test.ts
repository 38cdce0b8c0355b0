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
import { triggerRun } from '../../engine/store/control.ts'
import { writeOnlineRows } from '../../engine/store/feature-online.ts'

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
  assert.equal(calmOutputs.against_model!.reason, 'no feature drifted (1 compared)')
  assert.equal(calmOutputs.against_dataset!.reason, 'no feature drifted (2 compared)')
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
  assert.equal(outputs.against_dataset!.reason, '2 of 2 features drifted: amount, country')
  assert.equal(outputs.against_model!.reason, '1 of 1 feature drifted: amount')

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
  no_lineage_drifted:
    operator: evaluate.drift
    retries: 3
    params: { dataset: scores, model: "models:/imported/1", if_no_reference: drifted }
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
  assert.deepEqual(rows.map((r) => [r.task_id, r.attempts]), [['missing_column', '1'], ['no_lineage', '1'], ['no_lineage_drifted', '1']])
  assert.match(rows[0]!.message, /feature tenure missing from the reference training@1 or scores@1/)
  assert.match(rows[1]!.message, /records no training set/)
  // A version that exists without a training set is not a missing reference: if_no_reference does not apply.
  assert.match(rows[2]!.message, /records no training set/)
})

async function outputsOf(engine: TestEngine, runId: string): Promise<Record<string, Record<string, unknown>>> {
  const { rows } = await engine.db.query<{ task_id: string; outputs: Record<string, unknown> | null }>(`SELECT task_id, outputs FROM cairn.task_instance WHERE run_id = $1`, [runId])
  return Object.fromEntries(rows.map((r) => [r.task_id, r.outputs ?? {}]))
}

test('evaluate.drift with if_no_reference: drifted reports drift while the model has no such version; by default it fails', { timeout: 240_000 }, async (t) => {
  const engine = await startTestEngine(t, {
    dags: {
      'first.yaml': `
dag: first
tasks:
  drift:
    operator: evaluate.drift
    params: { dataset: scores, model: "models:/churn/production", if_no_reference: drifted }
  never_registered:
    operator: evaluate.drift
    params: { dataset: scores, model: "models:/ghost/3", if_no_reference: drifted }
  retrain:
    operator: noop
    depends_on: drift
    when: "{{ tasks.drift.outputs.drifted }}"
`,
      'strict.yaml': `
dag: strict
tasks:
  drift:
    operator: evaluate.drift
    retries: 2
    params: { dataset: scores, model: "models:/churn/production" }
`,
    },
    inProcessWorkers: 1,
  })
  const datasets = createDatasets({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  await seedVersion(datasets, 'training', REFERENCE)
  await seedVersion(datasets, 'scores', REFERENCE)
  // churn has a candidate version, but none in production.
  const file = join(mkdtempSync(join(tmpdir(), 'cairn-drift-')), 'model.onnx')
  writeFileSync(file, 'x')
  const models = createModels({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  await models.register({ name: 'churn', file, features: ['amount'], dataset: { name: 'training', version: 1 } })

  const first = await engine.trigger('first')
  assert.equal(await engine.waitForRun(first, 120_000), 'success')
  const outputs = await outputsOf(engine, first)
  assert.deepEqual(outputs.drift, {
    drifted: true, drifted_features: [], features: {}, reference: null, current: null,
    reason: 'no production version of model churn to compare with',
    thresholds: { psi: 0.2, ks: null, chi2_p_value: 0.01 },
  })
  assert.equal(outputs.never_registered!.drifted, true)
  assert.equal(outputs.never_registered!.reason, 'model ghost has no version 3 to compare with')
  assert.equal((await engine.taskStates(first)).retrain, 'success', 'the first model gets trained')

  const strict = await engine.trigger('strict')
  assert.equal(await engine.waitForRun(strict, 120_000), 'failed')
  const { rows } = await engine.db.query<{ attempts: string; message: string }>(`SELECT count(*)::text AS attempts, max(message) AS message FROM cairn.attempt WHERE run_id = $1`, [strict])
  assert.equal(rows[0]!.attempts, '1', 'not retried')
  assert.match(rows[0]!.message, /^model churn has no production version/)

  // Once a production version exists, the same task compares as usual.
  await models.setStage('churn', 1, 'production', { user: 'test' })
  const later = await engine.trigger('first')
  assert.equal(await engine.waitForRun(later, 120_000), 'success')
  const compared = (await outputsOf(engine, later)).drift!
  assert.equal(compared.drifted, false)
  assert.deepEqual(compared.reference, { dataset: 'training', version: 1, model: 'churn', model_version: 1 })
  assert.equal(compared.reason, 'no feature drifted (1 compared)')
  assert.equal((await engine.taskStates(later)).retrain, 'skipped')
})

const VIEW = (ttl: string) => `feature_view: user_activity
entity: user_id
source: events
timestamp: ts
ttl: ${ttl}
online: true
features:
  spend_7d: { agg: sum, column: amount, window: 7d }
  country: { agg: last, column: country }
`

const END = new Date('2026-03-10T00:00:00Z')
const HOUR = 3_600_000
const DAY = 24 * HOUR

/** One online row the test writes: its entity, definition version, feature timestamp and values. */
interface Written { user: string; definition: number; at: Date; spend: number; country: string | null }

test('evaluate.drift with online: the rows of the current definition served in (end - window, end], named as a training set names them', { timeout: 240_000 }, async (t) => {
  const engine = await startTestEngine(t, {
    dags: {
      'features/user_activity.yaml': VIEW('30d'),
      'online.yaml': `
dag: online
tasks:
  against_model:
    operator: evaluate.drift
    params: { online: { feature_view: user_activity, window: 7d }, model: "models:/churn/production", bins: 4 }
  against_dataset:
    operator: evaluate.drift
    params: { online: { feature_view: user_activity, window: 7d }, reference: churn_training, bins: 4 }
  past_ttl:
    operator: evaluate.drift
    params: { online: { feature_view: user_activity, window: 14d }, model: "models:/churn/production", bins: 4 }
`,
      'unprefixed.yaml': `
dag: unprefixed
tasks:
  drift:
    operator: evaluate.drift
    params: { online: { feature_view: user_activity, window: 7d }, reference: churn_training, features: [spend_7d] }
`,
      'empty.yaml': `
dag: empty
tasks:
  drift:
    operator: evaluate.drift
    retries: 2
    params: { online: { feature_view: user_activity, window: 2d }, model: "models:/churn/production" }
`,
    },
    inProcessWorkers: 1,
  })
  const { db } = engine
  const datasets = createDatasets({ db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  // The view's source: its columns give `country` (agg last) its type, a string.
  await seedVersion(datasets, 'events', `SELECT 'u' || i AS user_id, TIMESTAMPTZ '2026-03-01 00:00:00+00' AS ts, i::DOUBLE AS amount, 'DE' AS country FROM range(3) t(i)`)
  // The training set as features.training_set writes it: label columns, then VIEW__FEATURE.
  await seedVersion(datasets, 'churn_training', `SELECT 'u' || i AS user_id, (i % 2)::BIGINT AS label, (i % 300)::DOUBLE AS user_activity__spend_7d, CASE i % 3 WHEN 0 THEN 'DE' WHEN 1 THEN 'FR' ELSE 'NL' END AS user_activity__country FROM range(600) t(i)`)
  const file = join(mkdtempSync(join(tmpdir(), 'cairn-drift-')), 'model.onnx')
  writeFileSync(file, 'x')
  const models = createModels({ db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  await models.register({ name: 'churn', file, features: ['user_activity__spend_7d', 'user_activity__country'], dataset: { name: 'churn_training', version: 1 } })
  await models.setStage('churn', 1, 'production', { user: 'test' })

  const definition = async (version: number): Promise<void> => {
    const deadline = Date.now() + 60_000
    while ((await db.query<{ v: number }>(`SELECT current_version AS v FROM cairn.feature_view WHERE name = 'user_activity'`)).rows[0]?.v !== version) {
      assert.ok(Date.now() < deadline, `definition ${version} of user_activity was not stored`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  const written: Written[] = []
  const write = async (definitionVersion: number, prefix: string, count: number, at: Date, spend: (i: number) => number, country: (i: number) => string | null): Promise<void> => {
    const rows = Array.from({ length: count }, (_, i) => ({ user: `${prefix}${i}`, definition: definitionVersion, at, spend: spend(i), country: country(i) }))
    written.push(...rows)
    await writeOnlineRows(db, 'user_activity', definitionVersion, at, rows.map((r) => ({ key: JSON.stringify([r.user]), entity: { user_id: r.user }, features: { spend_7d: r.spend, country: r.country } })))
  }
  await definition(1)
  // Definition 1: inside the window, but an older definition: left out.
  await write(1, 'old', 50, new Date(END.getTime() - DAY), (i) => 5000 + i, () => 'OLD')
  engine.writeDag('features/user_activity.yaml', VIEW('10d'))
  await definition(2)
  await write(2, 'a', 100, new Date(END.getTime() - DAY), (i) => i, () => 'DE')
  await write(2, 'b', 60, new Date(END.getTime() - 5 * DAY), (i) => 100 + i, () => 'FR')
  await write(2, 'c', 40, new Date(END.getTime() - 7 * DAY), (i) => 1000 + i, () => 'US') // exactly window old: out of (end - 7d, end]
  await write(2, 'd', 30, END, (i) => 200 + i, (i) => (i % 3 === 0 ? null : 'NL')) // at the end: in
  await write(2, 'e', 20, new Date(END.getTime() + HOUR), () => 9000, () => 'LATE') // after the end: out
  await write(2, 'f', 10, new Date(END.getTime() - 9 * DAY), (i) => 300 + i, () => 'IT') // in 14d, within the ttl of 10d
  await write(2, 'g', 10, new Date(END.getTime() - 12 * DAY), (i) => 7000 + i, () => 'JP') // in 14d, but expired at the end

  const runAt = async (dagId: string, at: Date): Promise<string> => {
    const result = await db.tx((q) => triggerRun(q, { now: () => new Date() }, { dagId, params: {}, logicalDate: at }))
    if (!result.ok) throw new Error(result.message)
    return result.run.runId
  }
  const run = await runAt('online', END)
  assert.equal(await engine.waitForRun(run, 120_000), 'success')
  const outputs = await outputsOf(engine, run)

  // The expected rows, chosen here from what was written: the current definition (2), in (end - window, end], not expired.
  const current = 2
  const chosen = (windowMs: number, ttlMs: number): Written[] => written.filter((w) => w.definition === current && w.at.getTime() > END.getTime() - windowMs && w.at.getTime() <= END.getTime() && w.at.getTime() >= END.getTime() - ttlMs)
  const reference = Array.from({ length: 600 }, (_, i) => i % 300)
  for (const [task, windowMs] of [['against_model', 7 * DAY], ['past_ttl', 14 * DAY]] as const) {
    const expected = chosen(windowMs, 10 * DAY)
    const o = outputs[task] as { current: Record<string, unknown>; features: Record<string, any>; drifted_features: string[] }
    assert.deepEqual(o.current, { online: 'user_activity', definition_version: 2, window_start: new Date(END.getTime() - windowMs).toISOString(), window_end: END.toISOString(), rows: expected.length }, task)
    // (Sorted: outputs are stored as jsonb, which orders keys its own way.)
    assert.deepEqual(Object.keys(o.features).sort(), ['user_activity__country', 'user_activity__spend_7d'], `${task}: the model's features, as its training set names them`)
    const spend = o.features.user_activity__spend_7d
    assert.deepEqual(spend.rows, [600, expected.length])
    assert.ok(Math.abs(spend.psi - expectedPsi(reference, expected.map((w) => w.spend), 4)) < 1e-9, `${task}: psi ${spend.psi}`)
    const country = o.features.user_activity__country
    const counts = new Map<string, number>()
    for (const w of expected) if (w.country !== null) counts.set(w.country, (counts.get(w.country) ?? 0) + 1)
    const nonNull = [...counts.values()].reduce((a, b) => a + b, 0)
    assert.deepEqual(country.rows, [600, nonNull])
    assert.ok(Math.abs(country.null_fraction[1] - (expected.length - nonNull) / expected.length) < 1e-12)
    const shares = Object.fromEntries(country.histogram.categories.map((c: string, i: number) => [c, country.histogram.current[i]]).filter(([, v]: [string, number]) => v > 0))
    assert.deepEqual(Object.keys(shares).sort(), [...counts.keys()].sort(), `${task}: the categories of exactly the chosen rows`)
    for (const [c, n] of counts) assert.ok(Math.abs(shares[c] - n / nonNull) < 1e-12)
  }
  assert.equal((outputs.against_model!.current as { rows: number }).rows, 190, 'a, b and d')
  assert.equal((outputs.past_ttl!.current as { rows: number }).rows, 240, 'a, b, c, d and f; g is expired')
  // Against the training set itself, the default features are the columns both sides share: the view's, by the same names.
  assert.deepEqual(Object.keys(outputs.against_dataset!.features as object).sort(), ['user_activity__country', 'user_activity__spend_7d'])
  assert.deepEqual(outputs.against_dataset!.reference, { dataset: 'churn_training', version: 1 })
  assert.match(String(outputs.against_model!.reason), /^(no feature drifted|\d of 2 features drifted)/)

  const { rows: logs } = await db.query<{ task_id: string; line: string }>(`SELECT task_id, line FROM cairn.task_log WHERE run_id = $1 ORDER BY id`, [run])
  const logOf = (task: string) => logs.filter((l) => l.task_id === task).map((l) => l.line).join('\n')
  assert.match(logOf('past_ttl'), /longer than the ttl of user_activity: rows materialized before 2026-02-28T00:00:00.000Z are expired/)
  assert.doesNotMatch(logOf('against_model'), /longer than the ttl/)
  assert.match(logOf('against_model'), /190 online rows of feature view user_activity \(definition 2\)/)
  assert.match(logOf('against_model'), /drift of online user_activity/)

  // A feature named without its view: the message lists the online side's columns.
  const unprefixed = await runAt('unprefixed', END)
  assert.equal(await engine.waitForRun(unprefixed, 120_000), 'failed')
  const { rows: [named] } = await db.query<{ message: string }>(`SELECT message FROM cairn.attempt WHERE run_id = $1`, [unprefixed])
  assert.equal(named!.message, 'feature spend_7d missing from the reference churn_training@1 or online user_activity (definition 2, 2026-03-03T00:00:00.000Z to 2026-03-10T00:00:00.000Z) (its columns: user_activity__spend_7d, user_activity__country)')

  // A window with no row: a clear failure naming the view and the window, not retried.
  const empty = await runAt('empty', new Date(END.getTime() + 30 * DAY))
  assert.equal(await engine.waitForRun(empty, 120_000), 'failed')
  const { rows } = await db.query<{ attempts: string; message: string }>(`SELECT count(*)::text AS attempts, max(message) AS message FROM cairn.attempt WHERE run_id = $1`, [empty])
  assert.equal(rows[0]!.attempts, '1')
  assert.equal(rows[0]!.message, 'the online store holds no row of feature view user_activity (definition 2) in the window (2026-04-07T00:00:00.000Z, 2026-04-09T00:00:00.000Z]: nothing to compare')
})
