/**
 * `evaluate.gate`'s run (SPEC sections 4 and 7): scores the model on the dataset, and with `compare_to:
 * production` the production version of `model_name` on the same rows, then decides with
 * engine/models/gate.ts. The report goes into the outputs and, as a table, into the task log.
 *
 * A model given as a file path is read, like ingest's file sources, only inside the DAG folder,
 * CAIRN_HOME, data.allowed_paths and the data directory, once `..` and links are resolved.
 *
 * The baseline's model is `model_name`, else the NAME of a `model` given as `models:/NAME/...` (usually
 * a template, known only once rendered); `compare_to` on a file path without `model_name` → `invalid_params`.
 *
 * Failures: a gate not met → `gate_not_met`, never retried, outputs kept. A model or dataset that does
 * not exist, or features that are not columns of the dataset → `invalid_params`; nulls, labels that do
 * not fit the model, a model ONNX Runtime cannot load or run → `data_invalid`. Neither is retried.
 */
import { realpath } from 'node:fs/promises'
import { relative, isAbsolute } from 'node:path'
import { decideGate, formatNumber, gateMetrics, gateTable } from '../../engine/models/gate.ts'
import type { GateRule } from '../../engine/models/gate.ts'
import type { Evaluation, ModelToScore } from '../../engine/models/evaluate-model.ts'
import type { MetricName, MetricValue } from '../../engine/models/metrics.ts'
import { nullPolicy } from '../../engine/models/feeding.ts'
import { abortedResult, noDataServicesResult } from '../define.ts'
import { modelNameNeeded } from './model-name.ts'
import type { OperatorContext, OperatorResult } from '../define.ts'

export type GateParams = {
  model: string
  dataset: string
  label: string
  features?: string[]
  metrics: MetricName[]
  thresholds: Partial<Record<MetricName, { min?: number; max?: number }>>
  compare_to?: 'production'
  model_name?: string
  min_improvement?: Partial<Record<MetricName, number>>
}

const values = (metrics: Record<string, MetricValue>): Record<string, number | null> => Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, v.value]))

export async function runEvaluateGate(params: GateParams, ctx: OperatorContext): Promise<OperatorResult> {
  const data = ctx.data
  if (!data) return noDataServicesResult()
  if (ctx.signal.aborted) return abortedResult(ctx.signal)
  const invalid = (message: string): OperatorResult => ({ ok: false, kind: 'invalid_params', retryable: false, message })

  // The baseline's model: model_name, else the name in a registry reference (models:/NAME/...); a file has none.
  if (params.compare_to !== undefined && params.model_name === undefined && !params.model.startsWith('models:/')) return invalid(modelNameNeeded(params.model))
  const resolved = await data.models.resolve(params.model, data.dagsFolder)
  if (!resolved.ok) return invalid(resolved.message)
  if (resolved.model === undefined) {
    const outside = await outsideAllowed(resolved.path, [...data.allowedPaths, data.datasets.dir])
    if (outside !== undefined) return invalid(`model file ${outside} is outside the folders a task may read (${data.allowedPaths.join(', ')}; add a folder to data.allowed_paths in cairn.yaml to allow it)`)
  }
  const registered = resolved.model !== undefined && resolved.version !== undefined ? await data.models.get(resolved.model, resolved.version) : undefined
  const candidate: ModelToScore = { path: resolved.path, ...(registered ? { features: registered.features, task: registered.taskKind, ...nullPolicy(registered.metrics) } : {}) }
  const modelLabel = registered ? `${registered.model} version ${registered.version}` : resolved.path
  const dataset = await data.datasets.resolve(params.dataset)
  if (!dataset) return invalid(`dataset ${JSON.stringify(params.dataset)} has no version`)

  const rule: GateRule = {
    metrics: params.metrics,
    thresholds: params.thresholds,
    ...(params.compare_to ? { compareTo: params.compare_to } : {}),
    ...(params.min_improvement ? { minImprovement: params.min_improvement } : {}),
  }
  const metrics = gateMetrics(rule)
  const [{ openDuckDb }, { evaluateModel }, { ScoringProblem }] = await Promise.all([
    import('../../engine/data/duckdb.ts'),
    import('../../engine/models/evaluate-model.ts'),
    import('../../engine/models/score-dataset.ts'),
  ])
  const duck = await openDuckDb(data.duckdb)
  try {
    const score = async (who: string, model: ModelToScore, features: readonly string[] | undefined): Promise<Evaluation | OperatorResult> => {
      try {
        const evaluation = await evaluateModel(duck, model, dataset, { ...(features ? { features } : {}), label: params.label, metrics, signal: ctx.signal })
        if (!evaluation) return abortedResult(ctx.signal)
        ctx.log.info(`scored ${who} on ${dataset.dataset}@${dataset.version}: ${evaluation.rows} rows, ${evaluation.kind}`, { features: evaluation.features, features_from: evaluation.featuresFrom })
        return evaluation
      } catch (error) {
        if (ctx.signal.aborted) return abortedResult(ctx.signal)
        if (error instanceof ScoringProblem) return { ok: false, kind: error.kind, retryable: false, message: `${who}: ${error.message}` }
        throw error
      }
    }
    const evaluation = await score(modelLabel, candidate, params.features)
    if ('ok' in evaluation) return evaluation
    if (ctx.signal.aborted) return abortedResult(ctx.signal)

    let baseline: Evaluation | undefined
    const baselineModel = params.model_name ?? resolved.model
    if (params.compare_to === 'production' && baselineModel !== undefined) {
      if (params.model_name === undefined) ctx.log.info(`compare_to: production without model_name: the baseline is the production version of ${baselineModel}, the model of ${params.model}`)
      const production = await data.models.resolve(`models:/${baselineModel}/production`)
      if (!production.ok) {
        ctx.log.info(`${baselineModel} has no production version: nothing to compare with, the comparison passes (baseline null)`)
      } else {
        const row = await data.models.get(baselineModel, production.version)
        if (row && registered && row.model === registered.model && row.version === registered.version) {
          ctx.log.warn(`the model being gated is ${baselineModel}'s production version itself`)
        }
        // The baseline takes its own recorded features; the params' features only when it records none.
        const own = row?.features ?? []
        const result = await score(`the production version ${baselineModel} version ${production.version} (baseline)`, { path: production.path, features: own, task: row?.taskKind ?? null, ...nullPolicy(row?.metrics) }, own.length > 0 ? undefined : (params.features ?? evaluation.features))
        if ('ok' in result) return result
        baseline = result
      }
    }
    if (ctx.signal.aborted) return abortedResult(ctx.signal)
    return decide(rule, evaluation, baseline, ctx)
  } finally {
    duck.close()
  }
}

function decide(rule: GateRule, evaluation: Evaluation, baseline: Evaluation | undefined, ctx: OperatorContext): OperatorResult {
  const decision = decideGate(rule, evaluation.metrics, baseline?.metrics ?? null)
  for (const line of gateTable(decision)) ctx.log.info(line)
  const outputs = { passed: decision.passed, metrics: values(evaluation.metrics), baseline_metrics: baseline ? values(baseline.metrics) : null, report: decision.report }
  if (decision.passed) return { ok: true, outputs }
  const failed = decision.report.filter((r) => !r.passed).map((r) => `${r.metric} ${formatNumber(r.value)}: ${r.reason}`)
  return { ok: false, kind: 'gate_not_met', retryable: false, message: `gate not met: ${failed.join('; ')}`, outputs }
}

/** The file's real path when it lies outside every root (roots resolved through links too), else undefined. */
async function outsideAllowed(file: string, roots: readonly string[]): Promise<string | undefined> {
  const real = await realpath(file).catch(() => file)
  for (const root of roots) {
    const realRoot = await realpath(root).catch(() => undefined)
    if (realRoot === undefined) continue
    const rel = relative(realRoot, real)
    if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) return undefined
  }
  return real
}
