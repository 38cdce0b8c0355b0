/**
 * Feeding a model (SPEC section 7), the decisions that need no model and no data loaded: which columns
 * form the input, whether a dataset has them with types a model can take, how the first output's shape
 * reads, and what kind of model (binary, multiclass, regression) that makes.
 *
 *   input 0    the `features` columns, in that order, as FP32 [rows, features]. Booleans are 1/0,
 *              integers and numbers their value. A null or non-finite value is an error, never imputed.
 *   output 0   [N] or [N, 1]: one value per row (binary: the positive-class probability; regression:
 *              the value). [N, K]: class probabilities; K = 2 is binary with column 1 the positive class,
 *              unless the version was recorded as multiclass; K > 2 is multiclass.
 */
import type { DatasetColumn } from '../data/column-types.ts'
import { isMetricName } from './metrics.ts'
import type { MetricName, ScoreKind } from './metrics.ts'

/** Column types a model input (or a label) can be made from. */
const NUMERIC_TYPES: ReadonlySet<string> = new Set(['number', 'integer', 'boolean'])

export type FeatureChoice = { ok: true; features: string[]; source: 'params' | 'model version' | 'model file' } | { ok: false; message: string }

/** `features` of the params, else the list recorded with the version, else the one in the ONNX file's metadata. */
export function chooseFeatures(fromParams: readonly string[] | undefined, recorded: readonly string[] | undefined, inFile: readonly string[] | undefined): FeatureChoice {
  if (fromParams !== undefined && fromParams.length > 0) return { ok: true, features: [...fromParams], source: 'params' }
  if (recorded !== undefined && recorded.length > 0) return { ok: true, features: [...recorded], source: 'model version' }
  if (inFile !== undefined && inFile.length > 0) return { ok: true, features: [...inFile], source: 'model file' }
  return { ok: false, message: 'the model records no feature list (neither its registry version nor the ONNX file\'s metadata): give `features`, the dataset columns the model takes, in order' }
}

/** A message when the dataset lacks a feature or label column, or has one a model cannot take; else undefined. */
export function checkColumns(dataset: string, columns: readonly DatasetColumn[], features: readonly string[], label?: string): string | undefined {
  const byName = new Map(columns.map((c) => [c.name, c.type]))
  const wanted = label === undefined ? [...features] : [...features, label]
  const missing = wanted.filter((name) => !byName.has(name))
  if (missing.length > 0) {
    return `dataset ${dataset} has no column${missing.length === 1 ? '' : 's'} ${missing.map((m) => JSON.stringify(m)).join(', ')} (its columns: ${columns.map((c) => c.name).join(', ') || 'none'})`
  }
  const duplicated = features.filter((f, i) => features.indexOf(f) !== i)
  if (duplicated.length > 0) return `features name ${[...new Set(duplicated)].map((d) => JSON.stringify(d)).join(', ')} more than once`
  const wrong = wanted.filter((name) => !NUMERIC_TYPES.has(byName.get(name)!))
  if (wrong.length > 0) {
    return `${wrong.map((name) => `column ${JSON.stringify(name)} is ${byName.get(name)}`).join(', ')}: a model takes number, integer or boolean columns`
  }
  return undefined
}

/** The width of output 0 per row (1 or K), or a message when its shape is not one cairn reads. */
export function outputWidth(dims: readonly number[], rows: number): { ok: true; width: number } | { ok: false; message: string } {
  const shape = `[${dims.join(', ')}]`
  if (dims.length === 0 || dims.length > 2 || dims[0] !== rows) {
    return { ok: false, message: `the model's first output has shape ${shape} for ${rows} input rows; cairn reads [N], [N, 1] (a value or a probability per row) or [N, K] (class probabilities)` }
  }
  if (dims.length === 1) return { ok: true, width: 1 }
  if (dims[1]! < 1) return { ok: false, message: `the model's first output has shape ${shape}: no column per row` }
  return { ok: true, width: dims[1]! }
}

const REGRESSION_METRICS: ReadonlySet<MetricName> = new Set(['rmse', 'mae'])

/**
 * The kind of model, from the width of its first output and what is recorded about it (the registry
 * version's task, else the ONNX file's `task` metadata). A one-column output recorded as neither binary
 * nor regression is read as regression when the gate asks only for rmse and mae, else as binary.
 */
export function scoreKind(width: number, recorded: string | null | undefined, metrics: readonly string[] = []): ScoreKind {
  if (width > 2) return 'multiclass'
  if (width === 2) return recorded === 'multiclass' ? 'multiclass' : 'binary'
  if (recorded === 'regression' || recorded === 'binary') return recorded
  const asked = metrics.filter(isMetricName)
  return asked.length > 0 && asked.every((m) => REGRESSION_METRICS.has(m)) ? 'regression' : 'binary'
}

/** A message when a label does not fit the kind of model (binary: 0/1; multiclass: 0..K-1); else undefined. */
export function checkLabel(kind: ScoreKind, label: number, classes: number): string | undefined {
  if (kind === 'binary' && label !== 0 && label !== 1) return `${label} is not a binary label (0 or 1, false or true)`
  if (kind === 'multiclass' && (!Number.isInteger(label) || label < 0 || label >= classes)) return `${label} is not a class index of a ${classes}-class model (0..${classes - 1})`
  return undefined
}

/** `null_as` recorded with a version by cairn's trainer: null features were read as that value in training. */
export function nullPolicy(metrics: Readonly<Record<string, unknown>> | undefined): { nullAs?: number } {
  const value = metrics?.null_as
  return typeof value === 'number' && Number.isFinite(value) ? { nullAs: value } : {}
}
