/** Log-spaced latency buckets: every latency lands under its bucket's bound, and p99 read back from the buckets is within 5 %. */
import test from 'node:test'
import assert from 'node:assert/strict'
import { LATENCY_BUCKETS, bucketOf, bucketUpperMs, quantileMs } from '../../engine/serve/latency-buckets.ts'
import { prng } from '../../engine/seeded-random.ts'

test('a latency falls in the first bucket whose bound holds it', () => {
  for (const ms of [0, 0.005, 0.01, 0.0101, 0.3, 1, 1.5, 7.25, 100, 5000, 1e9]) {
    const i = bucketOf(ms)
    assert.ok(i >= 0 && i < LATENCY_BUCKETS)
    assert.ok(ms <= bucketUpperMs(i), `${ms} <= bound of ${i}`)
    if (i > 0) assert.ok(ms > bucketUpperMs(i - 1), `${ms} > bound of ${i - 1}`)
  }
  assert.equal(bucketOf(bucketUpperMs(100)), 100)
})

test('p99 from the buckets is within 5 % of the exact p99, whatever the spread', () => {
  const random = prng(7)
  for (const [scale, spread] of [[0.2, 0.5], [1, 2], [30, 1], [500, 3]] as const) {
    const values = Array.from({ length: 20_000 }, () => scale * Math.exp(spread * (random() - 0.5) * 2))
    const counts = new Map<number, number>()
    for (const v of values) counts.set(bucketOf(v), (counts.get(bucketOf(v)) ?? 0) + 1)
    const sorted = values.toSorted((a, b) => a - b)
    const exact = sorted[Math.ceil(0.99 * sorted.length) - 1]!
    const estimate = quantileMs(counts, 0.99)!
    assert.ok(Math.abs(estimate - exact) / exact < 0.05, `scale ${scale}: ${estimate} vs ${exact}`)
  }
  assert.equal(quantileMs(new Map(), 0.99), null)
})
