/**
 * Drift statistics against values worked out independently: hand-computed small cases, textbook
 * values of the chi-squared distribution, and a brute-force KS over every candidate point.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { binCounts, chiSquared, ksPValue, ksStatistic, psi, quantileEdges, upperGammaRegularized } from '../../engine/drift/statistics.ts'
import { prng } from '../../engine/seeded-random.ts'

const sorted = (values: number[]): Float64Array => Float64Array.from(values).sort()
const close = (actual: number, expected: number, tolerance: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} vs ${expected}`)

describe('drift statistics', () => {
  it('PSI by hand: 50/50 against 25/75', () => {
    // (0.25-0.5) ln(0.25/0.5) + (0.75-0.5) ln(0.75/0.5) = 0.25 ln 2 + 0.25 ln 1.5
    close(psi([50, 50], [25, 75]), 0.25 * Math.log(2) + 0.25 * Math.log(1.5), 1e-12, 'psi')
    assert.equal(psi([10, 20, 30], [1, 2, 3]), 0)
    // A bin only the current sample fills stays finite (1e-4 floor).
    close(psi([100, 0], [50, 50]), (0.5 - 1) * Math.log(0.5 / 1) + (0.5 - 1e-4) * Math.log(0.5 / 1e-4), 1e-12, 'psi with an empty bin')
  })

  it('quantile bins of the reference: deciles put a tenth of it in each bin', () => {
    const reference = sorted(Array.from({ length: 1000 }, (_, i) => i))
    const edges = quantileEdges(reference, 10)
    assert.deepEqual(edges, [100, 200, 300, 400, 500, 600, 700, 800, 900])
    assert.deepEqual(binCounts(reference, edges), new Array(10).fill(100))
    // Ties collapse edges rather than making empty bins.
    assert.deepEqual(quantileEdges(sorted([1, 1, 1, 1, 2, 2, 2, 2, 3, 3]), 5), [2, 3])
  })

  it('KS equals the largest CDF gap found by trying every value', () => {
    const random = prng(3)
    for (let trial = 0; trial < 20; trial++) {
      const a = sorted(Array.from({ length: 30 + trial }, () => Math.round(random() * 20)))
      const b = sorted(Array.from({ length: 25 + 2 * trial }, () => Math.round(random() * 20 + trial / 4)))
      let expected = 0
      for (const x of [...a, ...b]) {
        const fa = a.filter((v) => v <= x).length / a.length
        const fb = b.filter((v) => v <= x).length / b.length
        expected = Math.max(expected, Math.abs(fa - fb))
      }
      close(ksStatistic(a, b), expected, 1e-12, `trial ${trial}`)
    }
    assert.equal(ksStatistic(sorted([1, 2, 3]), sorted([4, 5])), 1)
    assert.equal(ksStatistic(sorted([1, 2, 3]), sorted([1, 2, 3])), 0)
  })

  it('KS p-value: the 5% critical value of the Kolmogorov distribution', () => {
    // lambda = 1.358 is the 5% point; with n = m = large, en + 0.12 + 0.11/en ~ en.
    const n = 1_000_000
    const d = 1.358 / Math.sqrt((n * n) / (2 * n))
    close(ksPValue(d, n, n), 0.05, 0.002, 'p at the 5% point')
    assert.equal(ksPValue(0, 10, 10), 1)
  })

  it('chi-squared: statistic by hand and p-values from the distribution tables', () => {
    // Table [[10, 20], [20, 10]]: expected 15 everywhere, statistic 4 * 25/15 = 6.667, 1 dof, p = 0.00982.
    const r = chiSquared([10, 20], [20, 10])
    close(r.statistic, 20 / 3, 1e-12, 'statistic')
    assert.equal(r.dof, 1)
    close(r.pValue, 0.009823, 5e-6, 'p')
    // Upper tail of chi-squared: P(X > 3.841 | 1 dof) = 0.05, P(X > 11.070 | 5 dof) = 0.05, P(X > 2 | 2 dof) = e^-1.
    close(upperGammaRegularized(0.5, 3.841459 / 2), 0.05, 1e-6, '1 dof')
    close(upperGammaRegularized(2.5, 11.070498 / 2), 0.05, 1e-6, '5 dof')
    close(upperGammaRegularized(1, 1), Math.exp(-1), 1e-12, '2 dof')
    // Same proportions: no drift at all.
    assert.deepEqual(chiSquared([10, 20, 30], [20, 40, 60]), { statistic: 0, dof: 2, pValue: 1 })
    // A category only in the current sample still counts.
    assert.ok(chiSquared([50, 50, 0], [45, 45, 10]).pValue < 0.01)
  })
})
