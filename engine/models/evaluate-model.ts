/**
 * Scores one model on one dataset version and computes metrics: the feeding decisions of feeding.ts, the
 * checks of the data (columns, types, nulls, labels that fit the kind of model), the batches of
 * score-dataset.ts, and metrics.ts over every row. Labels and predictions of the whole version are kept
 * (AUC ranks all rows at once): 16 bytes a row for a one-output model.
 */
import type { DatasetVersion } from '../data/datasets.ts'
import type { DuckDb } from '../data/duckdb.ts'
import { checkColumns, checkLabel, chooseFeatures, scoreKind } from './feeding.ts'
import { computeMetrics } from './metrics.ts'
import type { MetricName, MetricValue, ScoreKind } from './metrics.ts'
import { findBadValues, Growable, openOnnxModel, readOnnxMetadata, scoreBatches, ScoringProblem } from './score-dataset.ts'

export interface ModelToScore {
  /** The ONNX file. */
  path: string
  /** The feature list recorded with the registry version (empty or absent: none). */
  features?: readonly string[]
  /** The task recorded with the registry version. */
  task?: string | null
  /** What a null feature was read as in training (`null_as` of the version's metrics); absent: nulls are refused. */
  nullAs?: number
}

export interface Evaluation {
  metrics: Record<string, MetricValue>
  kind: ScoreKind
  features: string[]
  featuresFrom: string
  rows: number
}

export interface EvaluateOptions {
  /** `features` of the params, when given. */
  features?: readonly string[]
  label: string
  metrics: readonly MetricName[]
  signal: AbortSignal
  batchRows?: number
}

/** Undefined when the signal was aborted before the last batch. Problems of the model or data throw ScoringProblem. */
export async function evaluateModel(duck: DuckDb, model: ModelToScore, dataset: DatasetVersion, options: EvaluateOptions): Promise<Evaluation | undefined> {
  const needsFile = !(options.features?.length || model.features?.length) || !model.task || model.nullAs === undefined
  const fromFile = needsFile ? await readOnnxMetadata(model.path) : {}
  const chosen = chooseFeatures(options.features, model.features, fromFile.features)
  if (!chosen.ok) throw new ScoringProblem('invalid_params', chosen.message)
  const where = `${dataset.dataset}@${dataset.version}`
  const columns = checkColumns(where, dataset.columns, chosen.features, options.label)
  if (columns !== undefined) throw new ScoringProblem(chosen.source === 'params' ? 'invalid_params' : 'data_invalid', `${columns} (features from the ${chosen.source})`)
  const nullAs = model.nullAs ?? fromFile.nullAs
  const bad = await findBadValues(duck, dataset.files, [...chosen.features, options.label], nullAs === undefined ? undefined : new Set(chosen.features))
  if (bad !== undefined) throw new ScoringProblem('data_invalid', `dataset ${where}: ${bad}`)

  const recordedTask = model.task ?? fromFile.task
  const onnx = await openOnnxModel(model.path, chosen.features.length)
  const labels = new Growable()
  const predictions = new Growable()
  let kind: ScoreKind | undefined
  let classes = 1
  try {
    for await (const batch of scoreBatches(duck, onnx, { files: dataset.files, features: chosen.features, label: options.label, signal: options.signal, ...(nullAs === undefined ? {} : { nullAs }), ...(options.batchRows ? { batchRows: options.batchRows } : {}) })) {
      kind ??= scoreKind(batch.width, recordedTask, options.metrics)
      classes = batch.width
      const y = batch.labels!
      for (let i = 0; i < batch.rows; i++) {
        const wrong = checkLabel(kind, y[i]!, classes)
        if (wrong !== undefined) throw new ScoringProblem('data_invalid', `label column ${JSON.stringify(options.label)} of ${where}, row ${labels.length + 1}: ${wrong}`)
        labels.pushOne(y[i]!)
      }
      if (kind === 'multiclass') predictions.push(batch.outputs)
      else if (batch.width === 1) predictions.push(batch.outputs)
      else for (let i = 0; i < batch.rows; i++) predictions.pushOne(batch.outputs[i * batch.width + 1]!)
    }
  } finally {
    await onnx.close().catch(() => undefined)
  }
  if (options.signal.aborted) return undefined
  // No rows: the width of the output was never seen; the recorded task (or the metrics) decide.
  kind ??= scoreKind(recordedTask === 'multiclass' ? 3 : 1, recordedTask, options.metrics)
  const metrics = computeMetrics({ kind, labels: labels.view(), predictions: predictions.view(), ...(kind === 'multiclass' ? { classes } : {}) }, options.metrics)
  return { metrics, kind, features: chosen.features, featuresFrom: chosen.source, rows: labels.length }
}
