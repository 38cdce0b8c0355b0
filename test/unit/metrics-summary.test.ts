import { test } from 'node:test'
import assert from 'node:assert/strict'
import { metricsSummary } from '../../engine/models/metrics-summary.ts'

test("a model version's metrics in one line: the trainer's validation figures, else its own numbers", () => {
  const trained = { seed: 42, task: 'binary', train: { auc: 0.91 }, validation: { auc: 0.8663194444444444, loss: 0.4095381994315258, rows: 126, accuracy: 0.8174603174603174 } }
  assert.equal(metricsSummary(trained), 'validation auc 0.866, loss 0.410, accuracy 0.817')
  assert.equal(metricsSummary({ auc: 0.75, log_loss: 0.5123, n: 10, note: 'x' }), 'auc 0.750, log_loss 0.512, n 10')
  assert.equal(metricsSummary({}), '-')
  assert.equal(metricsSummary({ validation: {} }), '-')
  assert.equal(metricsSummary({ a: 1, b: 2, c: 3, d: 4, e: 5 }), 'a 1, b 2, c 3, d 4', 'at most four')
  assert.equal(metricsSummary({ a: Number.NaN, validation: [1] }), '-', 'no finite number, and a validation that is not an object is ignored')
})
