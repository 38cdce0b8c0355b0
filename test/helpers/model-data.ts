/**
 * Datasets and independent expectations for the model operator tests: rows made here (so every
 * prediction can be computed by the test from the same numbers), written as dataset versions of one or
 * several Parquet files, and metrics computed the plain way (a pairwise AUC, sums written out).
 */
import { join } from 'node:path'
import { writeFileSync } from 'node:fs'
import type { Datasets } from '../../engine/data/datasets.ts'
import { openDuckDb, sqlString } from '../../engine/data/duckdb.ts'

export type Row = Record<string, number | string | boolean | null>

/** Publishes `files` (each a list of rows with the same columns) as one version; `types` are DuckDB column types. */
export async function publishRows(datasets: Datasets, name: string, types: Record<string, string>, files: readonly (readonly Row[])[]): Promise<number> {
  const staged = await datasets.stage(name)
  const duck = await openDuckDb({ threads: 1 })
  try {
    for (const [i, rows] of files.entries()) {
      const jsonl = join(staged.dir, `part-${i}.jsonl.tmp`)
      writeFileSync(jsonl, rows.map((r) => JSON.stringify(r)).join('\n') + '\n')
      const columns = Object.entries(types).map(([c, t]) => `${sqlString(c)}: ${sqlString(t)}`).join(', ')
      await duck.run(`COPY (SELECT * FROM read_json(${sqlString(jsonl)}, format = 'newline_delimited', columns = {${columns}})) TO ${sqlString(join(staged.dir, `part-${i}.parquet`))} (FORMAT parquet)`)
    }
  } finally {
    duck.close()
  }
  const [published] = await datasets.publish([{ staged, producedKind: 'import' }])
  return published!.version.version
}

/** AUC as the share of (positive, negative) pairs the positive wins, ties counting one half: O(n^2). */
export function pairwiseAuc(scores: readonly number[], labels: readonly number[]): number {
  let wins = 0
  let pairs = 0
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 1) continue
    for (let j = 0; j < labels.length; j++) {
      if (labels[j] !== 0) continue
      pairs++
      if (scores[i]! > scores[j]!) wins++
      else if (scores[i] === scores[j]) wins += 0.5
    }
  }
  return wins / pairs
}

/** Binary metrics written out: predicted 1 when p >= 0.5; log loss with p clipped at 1e-15 on both sides. */
export function binaryExpectations(p: readonly number[], y: readonly number[]): Record<string, number> {
  let tp = 0
  let fp = 0
  let fn = 0
  let tn = 0
  let logLoss = 0
  let squared = 0
  let absolute = 0
  for (let i = 0; i < y.length; i++) {
    const predicted = p[i]! >= 0.5 ? 1 : 0
    if (predicted === 1 && y[i] === 1) tp++
    if (predicted === 1 && y[i] === 0) fp++
    if (predicted === 0 && y[i] === 1) fn++
    if (predicted === 0 && y[i] === 0) tn++
    const q = Math.min(Math.max(y[i] === 1 ? p[i]! : 1 - p[i]!, 1e-15), 1 - 1e-15)
    logLoss -= Math.log(q)
    squared += (p[i]! - y[i]!) ** 2
    absolute += Math.abs(p[i]! - y[i]!)
  }
  const precision = tp / (tp + fp)
  const recall = tp / (tp + fn)
  return {
    auc: pairwiseAuc(p, y),
    accuracy: (tp + tn) / y.length,
    precision,
    recall,
    f1: (2 * precision * recall) / (precision + recall),
    log_loss: logLoss / y.length,
    rmse: Math.sqrt(squared / y.length),
    mae: absolute / y.length,
  }
}

/** Multiclass: accuracy, macro precision/recall/f1 (per class, then averaged), log loss of the true class. */
export function multiclassExpectations(probabilities: readonly (readonly number[])[], y: readonly number[], classes: number): Record<string, number> {
  const predicted = probabilities.map((row) => row.indexOf(Math.max(...row)))
  let precision = 0
  let recall = 0
  let f1 = 0
  for (let c = 0; c < classes; c++) {
    const tp = predicted.filter((p, i) => p === c && y[i] === c).length
    const predictedC = predicted.filter((p) => p === c).length
    const actualC = y.filter((v) => v === c).length
    const pc = predictedC === 0 ? 0 : tp / predictedC
    const rc = actualC === 0 ? 0 : tp / actualC
    precision += pc
    recall += rc
    f1 += pc + rc === 0 ? 0 : (2 * pc * rc) / (pc + rc)
  }
  const logLoss = -y.reduce((sum, label, i) => sum + Math.log(Math.max(probabilities[i]![label]!, 1e-15)), 0) / y.length
  return {
    accuracy: predicted.filter((p, i) => p === y[i]).length / y.length,
    precision: precision / classes,
    recall: recall / classes,
    f1: f1 / classes,
    log_loss: logLoss,
  }
}
