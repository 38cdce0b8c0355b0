/**
 * The metrics `evaluate.gate` reports (SPEC section 4), computed from a model's outputs and the labels.
 * Pure functions over arrays; nothing here loads a model or reads a dataset.
 *
 * What each metric means for each kind of model:
 *
 *   binary      predictions are the positive-class probability p; labels 0 or 1. The predicted class is
 *               1 when p >= 0.5 (SPEC: "a 0.5 threshold"). accuracy, precision, recall and f1 of the
 *               positive class; auc of p; log_loss of the probability given to the true class
 *               (p or 1 - p) clipped to [1e-15, 1 - 1e-15]; rmse and mae of
 *               p against the 0/1 label (the square root of the Brier score, and its absolute twin).
 *   multiclass  predictions are K class probabilities per row; labels are class indices 0..K-1. The
 *               predicted class is the first arg-max. precision, recall and f1 are macro averages over
 *               the K classes (a class never predicted has precision 0, a class never present recall 0,
 *               as scikit-learn's zero_division=0); auc is the macro average of the one-vs-rest AUCs of
 *               the classes present with both outcomes; log_loss is -mean(log p[label]) with the same clip
 *               (rows are not renormalized); rmse and mae are not defined (null).
 *   regression  predictions are values; rmse and mae; the classification metrics are not defined (null).
 *
 * AUC is the Mann-Whitney rank statistic: scores are ranked with ties sharing their mean rank, so a tied
 * (positive, negative) pair counts one half. It is null when the labels hold only one class. A metric
 * that cannot be computed is null with a reason, never NaN (JSON has no NaN).
 */

export const METRIC_NAMES = ['auc', 'accuracy', 'f1', 'log_loss', 'precision', 'recall', 'rmse', 'mae'] as const
export type MetricName = (typeof METRIC_NAMES)[number]

/** The metrics where a lower value is better; the rest are better higher. */
const LOWER_IS_BETTER: ReadonlySet<MetricName> = new Set(['log_loss', 'rmse', 'mae'])

export function lowerIsBetter(metric: MetricName): boolean {
  return LOWER_IS_BETTER.has(metric)
}

export function isMetricName(value: string): value is MetricName {
  return (METRIC_NAMES as readonly string[]).includes(value)
}

export const SCORE_KINDS = ['binary', 'multiclass', 'regression'] as const
export type ScoreKind = (typeof SCORE_KINDS)[number]

/** Probabilities are clipped to [EPS, 1 - EPS] before log loss takes their logarithm. */
export const LOG_LOSS_EPS = 1e-15
/** Classification threshold on the positive-class probability (predicted 1 when p >= it). */
export const THRESHOLD = 0.5

export interface Scored {
  kind: ScoreKind
  /** binary: 0/1; multiclass: the class index; regression: the value. */
  labels: ArrayLike<number>
  /** binary: positive-class probability; regression: the value; multiclass: rows x classes, row-major. */
  predictions: ArrayLike<number>
  /** Number of classes (multiclass only). */
  classes?: number
}

export type MetricValue = { value: number; reason?: undefined } | { value: null; reason: string }

const notDefined = (metric: MetricName, kind: ScoreKind): MetricValue => ({ value: null, reason: `${metric} is not defined for a ${kind} model` })

/** Each requested metric, or null with the reason it cannot be computed. */
export function computeMetrics(scored: Scored, metrics: readonly MetricName[]): Record<string, MetricValue> {
  const out: Record<string, MetricValue> = {}
  const rows = scored.labels.length
  for (const metric of metrics) {
    if (rows === 0) {
      out[metric] = { value: null, reason: 'the dataset has no rows' }
      continue
    }
    out[metric] = metricOf(scored, metric)
  }
  return out
}

function metricOf(s: Scored, metric: MetricName): MetricValue {
  const y = s.labels
  const p = s.predictions
  if (s.kind === 'regression') {
    if (metric === 'rmse') return { value: rmse(y, p) }
    if (metric === 'mae') return { value: mae(y, p) }
    return notDefined(metric, s.kind)
  }
  if (s.kind === 'binary') {
    switch (metric) {
      case 'accuracy': return { value: binaryCounts(y, p).accuracy }
      case 'precision': return { value: binaryCounts(y, p).precision }
      case 'recall': return { value: binaryCounts(y, p).recall }
      case 'f1': return { value: binaryCounts(y, p).f1 }
      case 'auc': return nullable(rankAuc(p, y), 'auc needs both classes among the labels')
      case 'log_loss': return { value: binaryLogLoss(y, p) }
      case 'rmse': return { value: rmse(y, p) }
      case 'mae': return { value: mae(y, p) }
    }
  }
  const k = s.classes ?? 0
  switch (metric) {
    case 'accuracy': return { value: multiclassCounts(y, p, k).accuracy }
    case 'precision': return { value: multiclassCounts(y, p, k).precision }
    case 'recall': return { value: multiclassCounts(y, p, k).recall }
    case 'f1': return { value: multiclassCounts(y, p, k).f1 }
    case 'auc': return nullable(macroOvrAuc(y, p, k), 'auc needs at least one class with both outcomes among the labels')
    case 'log_loss': return { value: multiclassLogLoss(y, p, k) }
    default: return notDefined(metric, s.kind)
  }
}

function nullable(value: number | null, reason: string): MetricValue {
  return value === null ? { value: null, reason } : { value }
}

export interface ClassCounts {
  accuracy: number
  precision: number
  recall: number
  f1: number
}

function f1Of(precision: number, recall: number): number {
  return precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall)
}

/** Binary confusion counts at the 0.5 threshold; precision (recall) is 0 when nothing is predicted (present) positive. */
export function binaryCounts(labels: ArrayLike<number>, probabilities: ArrayLike<number>): ClassCounts {
  let tp = 0
  let fp = 0
  let fn = 0
  let tn = 0
  for (let i = 0; i < labels.length; i++) {
    const predicted = probabilities[i]! >= THRESHOLD
    const actual = labels[i] === 1
    if (predicted && actual) tp++
    else if (predicted) fp++
    else if (actual) fn++
    else tn++
  }
  const precision = tp + fp === 0 ? 0 : tp / (tp + fp)
  const recall = tp + fn === 0 ? 0 : tp / (tp + fn)
  return { accuracy: (tp + tn) / labels.length, precision, recall, f1: f1Of(precision, recall) }
}

/** The first arg-max of each row. */
export function argmaxRows(probabilities: ArrayLike<number>, classes: number, rows: number): Int32Array {
  const out = new Int32Array(rows)
  for (let i = 0; i < rows; i++) {
    let best = 0
    for (let c = 1; c < classes; c++) if (probabilities[i * classes + c]! > probabilities[i * classes + best]!) best = c
    out[i] = best
  }
  return out
}

/** Accuracy, and macro-averaged precision, recall and f1 over the K classes. */
export function multiclassCounts(labels: ArrayLike<number>, probabilities: ArrayLike<number>, classes: number): ClassCounts {
  const n = labels.length
  const predicted = argmaxRows(probabilities, classes, n)
  const tp = new Float64Array(classes)
  const predictedCount = new Float64Array(classes)
  const actualCount = new Float64Array(classes)
  let correct = 0
  for (let i = 0; i < n; i++) {
    const y = labels[i]!
    predictedCount[predicted[i]!]!++
    actualCount[y]!++
    if (predicted[i] === y) {
      correct++
      tp[y]!++
    }
  }
  let precision = 0
  let recall = 0
  let f1 = 0
  for (let c = 0; c < classes; c++) {
    const pc = predictedCount[c]! === 0 ? 0 : tp[c]! / predictedCount[c]!
    const rc = actualCount[c]! === 0 ? 0 : tp[c]! / actualCount[c]!
    precision += pc
    recall += rc
    f1 += f1Of(pc, rc)
  }
  return { accuracy: correct / n, precision: precision / classes, recall: recall / classes, f1: f1 / classes }
}

/**
 * ROC AUC as the Mann-Whitney U statistic: the share of (positive, negative) pairs whose positive scores
 * higher, a tie counting one half; this is the rank-sum formula with tied scores sharing their mean rank.
 * Counted exactly (in halves) by sorting the positives' and the negatives' scores apart (native typed-array
 * sorts: a comparator over an index array took seconds for a million rows) and walking both once.
 * Null when there are no positives (label 1) or no negatives.
 */
export function rankAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number | null {
  let positives = 0
  for (let i = 0; i < labels.length; i++) if (labels[i] === 1) positives++
  const negatives = labels.length - positives
  if (positives === 0 || negatives === 0) return null
  const pos = new Float64Array(positives)
  const neg = new Float64Array(negatives)
  for (let i = 0, p = 0, n = 0; i < labels.length; i++) {
    if (labels[i] === 1) pos[p++] = scores[i]!
    else neg[n++] = scores[i]!
  }
  pos.sort()
  neg.sort()
  // below: negatives scoring less than s; upTo: negatives scoring at most s (both only grow as s does).
  let below = 0
  let upTo = 0
  let halves = 0
  for (const s of pos) {
    while (below < negatives && neg[below]! < s) below++
    if (upTo < below) upTo = below
    while (upTo < negatives && neg[upTo]! <= s) upTo++
    halves += 2 * below + (upTo - below)
  }
  return halves / 2 / (positives * negatives)
}

/** Macro average of the one-vs-rest AUCs of the classes that have both outcomes; null when none has. */
export function macroOvrAuc(labels: ArrayLike<number>, probabilities: ArrayLike<number>, classes: number): number | null {
  const n = labels.length
  let sum = 0
  let counted = 0
  const scores = new Float64Array(n)
  const isClass = new Uint8Array(n)
  for (let c = 0; c < classes; c++) {
    for (let i = 0; i < n; i++) {
      scores[i] = probabilities[i * classes + c]!
      isClass[i] = labels[i] === c ? 1 : 0
    }
    const auc = rankAuc(scores, isClass)
    if (auc !== null) {
      sum += auc
      counted++
    }
  }
  return counted === 0 ? null : sum / counted
}

function clip(p: number): number {
  return Math.min(Math.max(p, LOG_LOSS_EPS), 1 - LOG_LOSS_EPS)
}

export function binaryLogLoss(labels: ArrayLike<number>, probabilities: ArrayLike<number>): number {
  let sum = 0
  for (let i = 0; i < labels.length; i++) {
    // The probability given to the true class, clipped (clipping p before 1 - p would leave 1.1e-15, not 1e-15).
    const p = probabilities[i]!
    sum -= Math.log(clip(labels[i] === 1 ? p : 1 - p))
  }
  return sum / labels.length
}

export function multiclassLogLoss(labels: ArrayLike<number>, probabilities: ArrayLike<number>, classes: number): number {
  let sum = 0
  for (let i = 0; i < labels.length; i++) sum -= Math.log(clip(probabilities[i * classes + labels[i]!]!))
  return sum / labels.length
}

export function rmse(labels: ArrayLike<number>, predictions: ArrayLike<number>): number {
  let sum = 0
  for (let i = 0; i < labels.length; i++) {
    const d = predictions[i]! - labels[i]!
    sum += d * d
  }
  return Math.sqrt(sum / labels.length)
}

export function mae(labels: ArrayLike<number>, predictions: ArrayLike<number>): number {
  let sum = 0
  for (let i = 0; i < labels.length; i++) sum += Math.abs(predictions[i]! - labels[i]!)
  return sum / labels.length
}
