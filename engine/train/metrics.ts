/** Metrics of a model's outputs on one split; classification uses a 0.5 threshold (SPEC section 7). */
import type { Task } from './data.ts'

export interface SplitMetrics {
  rows: number
  loss: number
  accuracy?: number
  auc?: number
  rmse?: number
  mae?: number
}

const EPS = 1e-7

/** `out`: [rows] probabilities (binary) or values (regression), [rows x K] probabilities (multiclass). */
export function splitMetrics(task: Task, out: Float32Array, y: Float32Array, classes: number): SplitMetrics {
  const rows = y.length
  if (rows === 0) return { rows, loss: Number.NaN }
  if (task === 'binary') {
    let loss = 0
    let correct = 0
    for (let i = 0; i < rows; i++) {
      const p = Math.min(Math.max(out[i]!, EPS), 1 - EPS)
      loss -= y[i]! === 1 ? Math.log(p) : Math.log(1 - p)
      if ((out[i]! >= 0.5 ? 1 : 0) === y[i]) correct++
    }
    return { rows, loss: loss / rows, accuracy: correct / rows, auc: auc(out, y) }
  }
  if (task === 'multiclass') {
    let loss = 0
    let correct = 0
    for (let i = 0; i < rows; i++) {
      const row = out.subarray(i * classes, (i + 1) * classes)
      let best = 0
      for (let k = 1; k < classes; k++) if (row[k]! > row[best]!) best = k
      if (best === y[i]) correct++
      loss -= Math.log(Math.max(row[y[i]!]!, EPS))
    }
    return { rows, loss: loss / rows, accuracy: correct / rows }
  }
  let se = 0
  let ae = 0
  for (let i = 0; i < rows; i++) {
    const d = out[i]! - y[i]!
    se += d * d
    ae += Math.abs(d)
  }
  return { rows, loss: se / rows, rmse: Math.sqrt(se / rows), mae: ae / rows }
}

/** ROC AUC by ranks (Mann-Whitney U), ties sharing their mean rank; NaN when one class is absent. */
export function auc(scores: Float32Array, y: Float32Array): number {
  const n = y.length
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!)
  let positives = 0
  let rankSum = 0
  for (let i = 0; i < n; ) {
    let j = i
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++
    const mean = (i + j) / 2 + 1
    for (let k = i; k <= j; k++) {
      if (y[order[k]!] === 1) {
        positives++
        rankSum += mean
      }
    }
    i = j + 1
  }
  const negatives = n - positives
  if (positives === 0 || negatives === 0) return Number.NaN
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives)
}
