/**
 * The gate's metrics against values computed here by hand (small cases with tied scores) and, on a
 * fixed dataset of 1,500 rows with many ties, AUC against a plain O(n^2) count over every
 * (positive, negative) pair. Also the gate's decision and the reading of a model's output shape.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { computeMetrics, rankAuc, LOG_LOSS_EPS } from '../../engine/models/metrics.ts'
import type { MetricName } from '../../engine/models/metrics.ts'
import { decideGate, gateTable } from '../../engine/models/gate.ts'
import { checkColumns, checkLabel, chooseFeatures, outputWidth, scoreKind } from '../../engine/models/feeding.ts'
import { prng } from '../../engine/seeded-random.ts'

const ALL: MetricName[] = ['auc', 'accuracy', 'f1', 'log_loss', 'precision', 'recall', 'rmse', 'mae']
const close = (actual: number | null, expected: number, what: string) => {
  assert.ok(actual !== null && Math.abs(actual - expected) < 1e-12, `${what}: ${actual} != ${expected}`)
}
const valueOf = (m: Record<string, { value: number | null }>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v.value]))

test('binary: tied scores, the 0.5 threshold (>=), clipped log loss, rmse and mae of the probability', () => {
  // Positives score 0.5 and 0.9; negatives 0.5, 0.2, 0.5. Pairs: (0.5 vs 0.5) x2 = two ties = 1,
  // (0.5 vs 0.2) = 1, 0.9 beats all three = 3: AUC = 5/6.
  const labels = [1, 0, 0, 1, 0]
  const p = [0.5, 0.5, 0.2, 0.9, 0.5]
  const m = valueOf(computeMetrics({ kind: 'binary', labels, predictions: p }, ALL))
  close(m.auc!, 5 / 6, 'auc')
  // Predicted positive (p >= 0.5): rows 0, 1, 3, 4 -> TP 2 (rows 0, 3), FP 2, FN 0, TN 1.
  close(m.accuracy!, 3 / 5, 'accuracy')
  close(m.precision!, 2 / 4, 'precision')
  close(m.recall!, 1, 'recall')
  close(m.f1!, (2 * 0.5 * 1) / 1.5, 'f1')
  close(m.log_loss!, -(Math.log(0.5) + Math.log(0.5) + Math.log(0.8) + Math.log(0.9) + Math.log(0.5)) / 5, 'log_loss')
  close(m.rmse!, Math.sqrt((0.25 + 0.25 + 0.04 + 0.01 + 0.25) / 5), 'rmse')
  close(m.mae!, (0.5 + 0.5 + 0.2 + 0.1 + 0.5) / 5, 'mae')

  // Certain and wrong: log(0) is clipped at 1e-15 on both sides.
  const wrong = valueOf(computeMetrics({ kind: 'binary', labels: [1, 0], predictions: [0, 1] }, ['log_loss']))
  close(wrong.log_loss!, -Math.log(LOG_LOSS_EPS), 'clipped log_loss')
  // Nothing predicted positive, nothing positive: precision and recall are 0, not NaN.
  const none = valueOf(computeMetrics({ kind: 'binary', labels: [0, 0], predictions: [0.1, 0.2] }, ['precision', 'recall', 'f1', 'accuracy']))
  assert.deepEqual(none, { precision: 0, recall: 0, f1: 0, accuracy: 1 })
  // Every score tied: AUC is exactly one half.
  close(rankAuc([0.3, 0.3, 0.3, 0.3], [1, 0, 1, 0]), 0.5, 'all tied')
})

test('binary AUC with one class only, and an empty dataset, are null with a reason', () => {
  const one = computeMetrics({ kind: 'binary', labels: [1, 1, 1], predictions: [0.2, 0.8, 0.5] }, ['auc', 'accuracy'])
  assert.equal(one.auc!.value, null)
  assert.match(one.auc!.reason!, /both classes/)
  close(one.accuracy!.value, 2 / 3, 'accuracy')
  const empty = computeMetrics({ kind: 'binary', labels: [], predictions: [] }, ['auc', 'rmse'])
  assert.deepEqual(empty, { auc: { value: null, reason: 'the dataset has no rows' }, rmse: { value: null, reason: 'the dataset has no rows' } })
})

test('multiclass: accuracy, macro precision/recall/f1, log loss of the true class, first arg-max on ties', () => {
  const probabilities = [
    0.7, 0.2, 0.1, // y 0, predicted 0
    0.1, 0.6, 0.3, // y 2, predicted 1
    0.2, 0.2, 0.6, // y 2, predicted 2
    0.3, 0.4, 0.3, // y 1, predicted 1
  ]
  const labels = [0, 2, 2, 1]
  const m = valueOf(computeMetrics({ kind: 'multiclass', labels, predictions: probabilities, classes: 3 }, ALL))
  close(m.accuracy!, 3 / 4, 'accuracy')
  // class 0: P 1, R 1; class 1: P 1/2, R 1; class 2: P 1, R 1/2.
  close(m.precision!, (1 + 0.5 + 1) / 3, 'precision')
  close(m.recall!, (1 + 1 + 0.5) / 3, 'recall')
  close(m.f1!, (1 + 2 / 3 + 2 / 3) / 3, 'f1')
  close(m.log_loss!, -(Math.log(0.7) + Math.log(0.3) + Math.log(0.6) + Math.log(0.4)) / 4, 'log_loss')
  // One-vs-rest AUCs: class 0 scores [.7 | .1 .2 .3] -> 1; class 1 [.4 | .2 .6 .2] -> 2/3; class 2 [.3 .6 | .1 .3] -> (1.5 + 2) / 4.
  close(m.auc!, (1 + 2 / 3 + 3.5 / 4) / 3, 'auc')
  assert.equal(m.rmse, null)
  assert.equal(m.mae, null)
  // A tie between classes 0 and 1 predicts class 0.
  const tie = valueOf(computeMetrics({ kind: 'multiclass', labels: [0], predictions: [0.4, 0.4, 0.2], classes: 3 }, ['accuracy']))
  assert.equal(tie.accuracy, 1)
})

test('regression: rmse and mae; classification metrics are not defined', () => {
  const m = computeMetrics({ kind: 'regression', labels: [1, 2, 3], predictions: [1.5, 2, 2] }, ['rmse', 'mae', 'auc'])
  close(m.rmse!.value, Math.sqrt((0.25 + 0 + 1) / 3), 'rmse')
  close(m.mae!.value, 1.5 / 3, 'mae')
  assert.equal(m.auc!.value, null)
  assert.match(m.auc!.reason!, /not defined for a regression model/)
})

test('AUC on a fixed dataset of 1,500 rows with many ties equals the pairwise count', () => {
  const random = prng(20261201)
  const labels: number[] = []
  const scores: number[] = []
  for (let i = 0; i < 1500; i++) {
    const y = random() < 0.35 ? 1 : 0
    labels.push(y)
    // Two decimals: about 100 distinct scores, so most scores are tied with others.
    scores.push(Math.round(Math.min(1, Math.max(0, 0.4 * y + 0.6 * random())) * 100) / 100)
  }
  let wins = 0
  let positives = 0
  let negatives = 0
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === 1) positives++
    else negatives++
    if (labels[i] !== 1) continue
    for (let j = 0; j < labels.length; j++) {
      if (labels[j] !== 0) continue
      if (scores[i]! > scores[j]!) wins += 1
      else if (scores[i] === scores[j]) wins += 0.5
    }
  }
  const pairwise = wins / (positives * negatives)
  assert.ok(pairwise > 0.6 && pairwise < 0.99, `a dataset where AUC means something: ${pairwise}`)
  close(rankAuc(scores, labels), pairwise, 'rank AUC vs pairwise')
  // Shuffling the rows changes nothing.
  const order = labels.map((_, i) => i).sort(() => random() - 0.5)
  close(rankAuc(order.map((i) => scores[i]!), order.map((i) => labels[i]!)), pairwise, 'shuffled')
})

test('gate decision: thresholds, improvements over a baseline, no baseline, metrics that cannot be computed', () => {
  const v = (value: number) => ({ value })
  const metrics = { auc: v(0.8), log_loss: v(0.45), accuracy: v(0.7) }
  const passing = decideGate({ metrics: ['auc', 'log_loss', 'accuracy'], thresholds: { auc: { min: 0.75 }, log_loss: { max: 0.5 } } }, metrics, null)
  assert.equal(passing.passed, true)
  assert.deepEqual(passing.report[0], { metric: 'auc', value: 0.8, threshold: { min: 0.75 }, baseline: null, min_improvement: null, passed: true })
  assert.deepEqual(passing.report[2], { metric: 'accuracy', value: 0.7, threshold: null, baseline: null, min_improvement: null, passed: true })

  const failing = decideGate({ metrics: ['auc', 'log_loss'], thresholds: { auc: { min: 0.85 }, log_loss: { max: 0.4 } } }, metrics, null)
  assert.equal(failing.passed, false)
  assert.deepEqual(failing.report.map((r) => r.reason), ['0.8 < min 0.85', '0.45 > max 0.4'])
  assert.match(gateTable(failing).join('\n'), /auc\s+0\.8\s+>= 0\.85\s+-\s+-\s+FAILED: 0\.8 < min 0\.85/)

  // compare_to with min_improvement: only the named metrics are compared; log_loss improves downwards.
  const rule = { metrics: ['auc', 'log_loss', 'accuracy'] as MetricName[], thresholds: {}, compareTo: 'production' as const, minImprovement: { auc: 0.01, log_loss: 0.05 } }
  const beaten = decideGate(rule, metrics, { auc: v(0.78), log_loss: v(0.5), accuracy: v(0.9) })
  assert.equal(beaten.passed, true, JSON.stringify(beaten.report))
  assert.deepEqual(beaten.report.map((r) => [r.baseline, r.min_improvement]), [[0.78, 0.01], [0.5, 0.05], [0.9, null]])
  const notBeaten = decideGate(rule, metrics, { auc: v(0.795), log_loss: v(0.46), accuracy: v(0.5) })
  assert.equal(notBeaten.passed, false)
  assert.match(notBeaten.report[0]!.reason!, /improves on the baseline's 0\.795 by 0\.005.*less than the required 0\.01/)
  assert.match(notBeaten.report[1]!.reason!, /baseline's 0\.46 by 0\.01.*required 0\.05/)
  // Without min_improvement every metric must be at least as good.
  const noWorse = decideGate({ ...rule, minImprovement: undefined }, metrics, { auc: v(0.8), log_loss: v(0.44), accuracy: v(0.6) })
  assert.deepEqual(noWorse.report.map((r) => r.passed), [true, false, true])
  assert.equal(noWorse.report[1]!.reason, "worse than the baseline's 0.44 by 0.01")
  const worse = decideGate(rule, metrics, { auc: v(0.83), log_loss: v(0.5), accuracy: v(0.7) })
  assert.equal(worse.report[0]!.reason, "worse than the baseline's 0.83 by 0.03, and must improve on it by at least 0.01")
  // No production version: nothing to compare with, passes, baseline null.
  const first = decideGate(rule, metrics, null)
  assert.equal(first.passed, true)
  assert.deepEqual(first.report.map((r) => [r.baseline, r.min_improvement]), [[null, null], [null, null], [null, null]])
  // A metric that cannot be computed fails its threshold, and metrics only thresholds name are computed too.
  const nullAuc = decideGate({ metrics: ['accuracy'], thresholds: { auc: { min: 0.5 } } }, { accuracy: v(1), auc: { value: null, reason: 'auc needs both classes among the labels' } }, null)
  assert.equal(nullAuc.passed, false)
  assert.deepEqual(nullAuc.report.map((r) => r.metric), ['accuracy', 'auc'])
  assert.equal(nullAuc.report[1]!.reason, 'cannot be computed: auc needs both classes among the labels')
})

test('feeding: features chosen in order of precedence, columns checked, output shapes and kinds read', () => {
  assert.deepEqual(chooseFeatures(['a'], ['b'], ['c']), { ok: true, features: ['a'], source: 'params' })
  assert.deepEqual(chooseFeatures(undefined, [], ['c']), { ok: true, features: ['c'], source: 'model file' })
  assert.equal(chooseFeatures(undefined, [], undefined).ok, false)
  const columns = [{ name: 'a', type: 'number' as const }, { name: 'b', type: 'boolean' as const }, { name: 's', type: 'string' as const }]
  assert.equal(checkColumns('d@1', columns, ['a', 'b'], 'b'), undefined)
  assert.equal(checkColumns('d@1', columns, ['a', 'x', 'y']), 'dataset d@1 has no columns "x", "y" (its columns: a, b, s)')
  assert.match(checkColumns('d@1', columns, ['a', 's'])!, /column "s" is string: a model takes number, integer or boolean columns/)
  assert.deepEqual(outputWidth([4], 4), { ok: true, width: 1 })
  assert.deepEqual(outputWidth([4, 1], 4), { ok: true, width: 1 })
  assert.deepEqual(outputWidth([4, 3], 4), { ok: true, width: 3 })
  assert.equal(outputWidth([4, 3, 2], 4).ok, false)
  assert.equal(outputWidth([1, 3], 4).ok, false)
  assert.equal(scoreKind(2, null), 'binary')
  assert.equal(scoreKind(2, 'multiclass'), 'multiclass')
  assert.equal(scoreKind(5, 'binary'), 'multiclass')
  assert.equal(scoreKind(1, 'regression', ['auc']), 'regression')
  assert.equal(scoreKind(1, null, ['rmse', 'mae']), 'regression')
  assert.equal(scoreKind(1, null, ['rmse', 'auc']), 'binary')
  assert.equal(checkLabel('binary', 2, 1), '2 is not a binary label (0 or 1, false or true)')
  assert.equal(checkLabel('multiclass', 3, 3), '3 is not a class index of a 3-class model (0..2)')
  assert.equal(checkLabel('regression', 3.5, 1), undefined)
})

test('the feature list and task kind come from an ONNX file\'s metadata_props when the registry has none', async () => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { writeOnnxModel } = await import('../helpers/onnx-models.ts')
  const { readOnnxMetadata } = await import('../../engine/models/score-dataset.ts')
  const dir = mkdtempSync(join(tmpdir(), 'cairn-onnx-metadata-'))
  try {
    const weights = { w: [[1], [2]], b: [0] }
    const withMetadata = writeOnnxModel(join(dir, 'a.onnx'), 'logistic', weights, { features: JSON.stringify(['x1', 'x2']), task: 'binary' })
    assert.deepEqual(await readOnnxMetadata(withMetadata), { features: ['x1', 'x2'], task: 'binary' })
    assert.deepEqual(await readOnnxMetadata(writeOnnxModel(join(dir, 'b.onnx'), 'logistic', weights)), {})
    writeFileSync(join(dir, 'c.onnx'), 'not a model')
    assert.deepEqual(await readOnnxMetadata(join(dir, 'c.onnx')), {})
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
