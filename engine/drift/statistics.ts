/**
 * Drift statistics between a reference sample (a model's training set) and a current one, pure:
 *
 *   PSI   population stability index over bins cut at the reference's quantiles (deciles by default):
 *         sum over bins of (cur% - ref%) * ln(cur% / ref%), with empty bins smoothed to 1e-4 so that a
 *         bin only one side fills stays finite. Rule of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2 drift.
 *   KS    two-sample Kolmogorov-Smirnov statistic, the largest gap between the two empirical CDFs, exactly
 *         (every distinct value is a step), with its asymptotic p-value.
 *   chi2  Pearson's chi-squared test of homogeneity on the category counts of both samples (a 2 x k table),
 *         k - 1 degrees of freedom, with its p-value (regularized upper incomplete gamma).
 */

const PSI_FLOOR = 1e-4

/** Bin edges at the reference's quantiles: up to `bins - 1` inner cut points, ties and the minimum left out. */
export function quantileEdges(sortedReference: Float64Array, bins: number): number[] {
  const edges: number[] = []
  const n = sortedReference.length
  if (n === 0) return edges
  for (let i = 1; i < bins; i++) {
    const value = sortedReference[Math.min(n - 1, Math.floor((i * n) / bins))]!
    // An edge at the minimum would leave the first bin empty for ever.
    if (value > sortedReference[0]! && (edges.length === 0 || value > edges[edges.length - 1]!)) edges.push(value)
  }
  return edges
}

/** Counts per bin: bin i holds values v with edges[i-1] <= v < edges[i] (first and last open-ended). */
export function binCounts(sorted: Float64Array, edges: readonly number[]): number[] {
  const counts = new Array<number>(edges.length + 1).fill(0)
  let bin = 0
  for (const v of sorted) {
    while (bin < edges.length && v >= edges[bin]!) bin++
    counts[bin]!++
  }
  return counts
}

export function psi(referenceCounts: readonly number[], currentCounts: readonly number[]): number {
  const refTotal = referenceCounts.reduce((a, b) => a + b, 0)
  const curTotal = currentCounts.reduce((a, b) => a + b, 0)
  if (refTotal === 0 || curTotal === 0) return 0
  let sum = 0
  for (let i = 0; i < referenceCounts.length; i++) {
    const r = Math.max(referenceCounts[i]! / refTotal, PSI_FLOOR)
    const c = Math.max(currentCounts[i]! / curTotal, PSI_FLOOR)
    sum += (c - r) * Math.log(c / r)
  }
  return sum
}

/** Both samples sorted ascending. */
export function ksStatistic(a: Float64Array, b: Float64Array): number {
  if (a.length === 0 || b.length === 0) return 0
  let i = 0
  let j = 0
  let d = 0
  while (i < a.length && j < b.length) {
    const x = Math.min(a[i]!, b[j]!)
    while (i < a.length && a[i]! <= x) i++
    while (j < b.length && b[j]! <= x) j++
    d = Math.max(d, Math.abs(i / a.length - j / b.length))
  }
  return d
}

/** Asymptotic p-value of the two-sample KS statistic (Kolmogorov distribution, with Stephens' correction). */
export function ksPValue(d: number, n: number, m: number): number {
  if (n === 0 || m === 0) return 1
  const en = Math.sqrt((n * m) / (n + m))
  const lambda = (en + 0.12 + 0.11 / en) * d
  if (lambda < 1e-3) return 1
  let sum = 0
  for (let k = 1; k <= 100; k++) {
    const term = 2 * (k % 2 === 1 ? 1 : -1) * Math.exp(-2 * k * k * lambda * lambda)
    sum += term
    if (Math.abs(term) < 1e-12) break
  }
  return Math.min(1, Math.max(0, sum))
}

/** Chi-squared test of homogeneity of two count vectors over the same categories. */
export function chiSquared(referenceCounts: readonly number[], currentCounts: readonly number[]): { statistic: number; dof: number; pValue: number } {
  const refTotal = referenceCounts.reduce((a, b) => a + b, 0)
  const curTotal = currentCounts.reduce((a, b) => a + b, 0)
  const total = refTotal + curTotal
  let statistic = 0
  let used = 0
  for (let i = 0; i < referenceCounts.length; i++) {
    const column = referenceCounts[i]! + currentCounts[i]!
    if (column === 0) continue
    used++
    for (const [observed, rowTotal] of [[referenceCounts[i]!, refTotal], [currentCounts[i]!, curTotal]] as const) {
      const expected = (rowTotal * column) / total
      if (expected > 0) statistic += (observed - expected) ** 2 / expected
    }
  }
  const dof = Math.max(0, used - 1)
  if (refTotal === 0 || curTotal === 0 || dof === 0) return { statistic: 0, dof, pValue: 1 }
  return { statistic, dof, pValue: upperGammaRegularized(dof / 2, statistic / 2) }
}

/** Q(a, x) = Γ(a, x) / Γ(a): series for x < a + 1, continued fraction otherwise (Numerical Recipes 6.2). */
export function upperGammaRegularized(a: number, x: number): number {
  if (x <= 0) return 1
  const lnGammaA = lnGamma(a)
  if (x < a + 1) {
    let sum = 1 / a
    let term = sum
    for (let n = 1; n < 500; n++) {
      term *= x / (a + n)
      sum += term
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break
    }
    return Math.max(0, 1 - sum * Math.exp(-x + a * Math.log(x) - lnGammaA))
  }
  const tiny = 1e-300
  let b = x + 1 - a
  let c = 1 / tiny
  let d = 1 / b
  let h = d
  for (let i = 1; i < 500; i++) {
    const an = -i * (i - a)
    b += 2
    d = an * d + b
    if (Math.abs(d) < tiny) d = tiny
    c = b + an / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    const delta = d * c
    h *= delta
    if (Math.abs(delta - 1) < 1e-15) break
  }
  return Math.min(1, Math.exp(-x + a * Math.log(x) - lnGammaA) * h)
}

/** Lanczos approximation of ln Γ(z), z > 0. */
function lnGamma(z: number): number {
  const g = 7
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7]
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - lnGamma(1 - z)
  const x = z - 1
  let a = c[0]!
  const t = x + g + 0.5
  for (let i = 1; i < g + 2; i++) a += c[i]! / (x + i)
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a)
}
