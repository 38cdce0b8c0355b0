/** The trainer's pure pieces: AUC with ties, the seeded split and shuffles, standardization. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { auc, splitMetrics } from '../../engine/train/metrics.ts'
import { permutation, prng, splitRows, standardization } from '../../engine/train/data.ts'
import type { Table } from '../../engine/train/data.ts'

test('AUC: perfect, reversed, ties at their mean rank, one class only', () => {
  const y = Float32Array.of(0, 0, 1, 1)
  assert.equal(auc(Float32Array.of(0.1, 0.2, 0.8, 0.9), y), 1)
  assert.equal(auc(Float32Array.of(0.9, 0.8, 0.2, 0.1), y), 0)
  assert.equal(auc(Float32Array.of(0.5, 0.5, 0.5, 0.5), y), 0.5)
  // Pairs (neg, pos): (0.1,0.4) win, (0.1,0.35) win, (0.4,0.4) tie, (0.4,0.35) loss -> 2.5 / 4.
  assert.equal(auc(Float32Array.of(0.1, 0.4, 0.4, 0.35), Float32Array.of(0, 0, 1, 1)), 0.625)
  assert.ok(Number.isNaN(auc(Float32Array.of(0.1, 0.2), Float32Array.of(1, 1))))
})

test('binary metrics use a 0.5 threshold; regression gives rmse and mae', () => {
  const m = splitMetrics('binary', Float32Array.of(0.5, 0.49, 0.9), Float32Array.of(1, 1, 0), 1)
  assert.equal(m.accuracy, 1 / 3)
  const r = splitMetrics('regression', Float32Array.of(1, 2), Float32Array.of(0, 4), 1)
  assert.equal(r.rmse, Math.sqrt(2.5))
  assert.equal(r.mae, 1.5)
})

test('the split and the shuffles depend only on the seed', () => {
  assert.deepEqual(splitRows(100, 0.2, 7), splitRows(100, 0.2, 7))
  assert.notDeepEqual(splitRows(100, 0.2, 7).validation, splitRows(100, 0.2, 8).validation)
  const s = splitRows(100, 0.2, 7)
  assert.equal(s.validation.length, 20)
  assert.deepEqual([...s.train, ...s.validation].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i))
  assert.equal(splitRows(2, 0.2, 1).validation.length, 1)
  assert.equal(splitRows(10, 0, 1).validation.length, 0)
  assert.deepEqual(permutation(50, prng(3)), permutation(50, prng(3)))
})

test('standardization over the given rows; a constant column gets std 1', () => {
  const table: Table = { x: Float32Array.of(1, 5, 3, 5, 100, 5), y: new Float32Array(3), rows: 3, features: ['a', 'b'], nullCounts: {} }
  const stats = standardization(table, Uint32Array.of(0, 1))
  assert.deepEqual([...stats.mean], [2, 5])
  assert.deepEqual([...stats.std], [1, 1])
})
