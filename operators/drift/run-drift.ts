/**
 * evaluate.drift: reads each feature of the reference and the current dataset with DuckDB and computes
 * the statistics of engine/drift/statistics.ts. Nulls are left out of the statistics and reported as
 * each side's null fraction. The figures, with histograms (the reference's quantile bins for numbers,
 * the 20 most frequent categories), are the task's outputs, and a table goes into its log.
 */
import type { DataServices } from '../../engine/data/data-services.ts'
import { openDuckDb, parquetScan, sqlIdent } from '../../engine/data/duckdb.ts'
import type { DatasetVersion } from '../../engine/data/datasets.ts'
import { binCounts, chiSquared, ksPValue, ksStatistic, psi, quantileEdges } from '../../engine/drift/statistics.ts'
import type { OperatorContext, OperatorResult } from '../define.ts'
import type { DriftParams } from '../evaluate-drift.ts'

const TOP_CATEGORIES = 20
const CATEGORICAL_TYPES = new Set(['string', 'boolean'])

type FeatureDrift =
  | { kind: 'numeric'; drifted: boolean; psi: number; ks: number; ks_p_value: number; rows: [number, number]; null_fraction: [number, number]; histogram: { edges: number[]; reference: number[]; current: number[] } }
  | { kind: 'categorical'; drifted: boolean; chi2: number; dof: number; p_value: number; rows: [number, number]; null_fraction: [number, number]; histogram: { categories: string[]; reference: number[]; current: number[] } }

const fail = (message: string): OperatorResult => ({ ok: false, kind: 'invalid_params', retryable: false, message })

export async function runDrift(params: DriftParams, ctx: OperatorContext, data: DataServices): Promise<OperatorResult> {
  const current = await data.datasets.resolve(params.dataset)
  if (!current) return fail(`dataset ${JSON.stringify(params.dataset)} has no version`)
  let reference: DatasetVersion | undefined
  let features = params.features
  let modelVersion: { model: string; version: number } | undefined
  if (params.model !== undefined) {
    const resolved = await data.models.resolve(params.model)
    if (!resolved.ok) return fail(resolved.message)
    if (resolved.model === undefined || resolved.version === undefined) return fail(`${params.model} is a model file, not a registered version: its training set is unknown; give \`reference\` instead`)
    const version = await data.models.get(resolved.model, resolved.version)
    const trainedOn = version?.lineage.dataset
    if (!version || !trainedOn) return fail(`model ${resolved.model} version ${resolved.version} records no training set (it was not trained by cairn); give \`reference\` instead`)
    reference = await data.datasets.get(trainedOn.name, trainedOn.version)
    if (!reference) return fail(`the training set of model ${resolved.model} version ${resolved.version}, ${trainedOn.name}@${trainedOn.version}, no longer exists`)
    features ??= version.features.length > 0 ? version.features : undefined
    modelVersion = { model: resolved.model, version: resolved.version }
  } else {
    reference = await data.datasets.resolve(params.reference!)
    if (!reference) return fail(`dataset ${JSON.stringify(params.reference)} has no version`)
  }
  const refTypes = new Map(reference.columns.map((c) => [c.name, c.type]))
  const curTypes = new Map(current.columns.map((c) => [c.name, c.type]))
  features ??= reference.columns.map((c) => c.name).filter((name) => curTypes.has(name))
  const missing = features.filter((f) => !refTypes.has(f) || !curTypes.has(f))
  if (missing.length > 0) {
    return fail(`feature${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing from ${missing.some((f) => !refTypes.has(f)) ? `the reference ${reference.dataset}@${reference.version}` : ''}${missing.some((f) => !refTypes.has(f)) && missing.some((f) => !curTypes.has(f)) ? ' or ' : ''}${missing.some((f) => !curTypes.has(f)) ? `${current.dataset}@${current.version}` : ''}`)
  }
  const categorical = new Set(params.categorical ?? features.filter((f) => CATEGORICAL_TYPES.has(refTypes.get(f)!)))
  const bins = params.bins ?? 10
  const limits = { psi: params.thresholds?.psi ?? 0.2, ks: params.thresholds?.ks, chi2: params.thresholds?.chi2_p_value ?? 0.01 }

  const duck = await openDuckDb(data.duckdb)
  const results: Record<string, FeatureDrift> = {}
  try {
    for (const feature of features) {
      if (ctx.signal.aborted) break
      const column = sqlIdent(feature)
      if (categorical.has(feature)) {
        const categoryCounts = async (files: readonly string[]): Promise<Map<string, number>> =>
          new Map((await duck.values(`SELECT CAST(${column} AS VARCHAR), count(*) FROM ${parquetScan(files)} WHERE ${column} IS NOT NULL GROUP BY 1`)).map((r) => [String(r[0]), Number(r[1])]))
        const ref = await categoryCounts(reference.files)
        const cur = await categoryCounts(current.files)
        const refRows = sum(ref.values())
        const curRows = sum(cur.values())
        const categories = [...new Set([...ref.keys(), ...cur.keys()])].sort((a, b) => (ref.get(b) ?? 0) + (cur.get(b) ?? 0) - (ref.get(a) ?? 0) - (cur.get(a) ?? 0) || a.localeCompare(b))
        const test = chiSquared(categories.map((c) => ref.get(c) ?? 0), categories.map((c) => cur.get(c) ?? 0))
        const shown = categories.slice(0, TOP_CATEGORIES)
        results[feature] = {
          kind: 'categorical', drifted: test.pValue < limits.chi2, chi2: test.statistic, dof: test.dof, p_value: test.pValue, rows: [refRows, curRows], null_fraction: [nullShare(refRows, reference.rows), nullShare(curRows, current.rows)],
          histogram: { categories: shown, reference: shown.map((c) => share(ref.get(c) ?? 0, refRows)), current: shown.map((c) => share(cur.get(c) ?? 0, curRows)) },
        }
      } else {
        // Every non-null value, sorted: their count gives the null share, the finite ones the statistics.
        const numbers = async (files: readonly string[]): Promise<{ nonNull: number; values: Float64Array }> => {
          const rows = await duck.values(`SELECT CAST(${column} AS DOUBLE) FROM ${parquetScan(files)} WHERE ${column} IS NOT NULL ORDER BY 1`)
          return { nonNull: rows.length, values: Float64Array.from(rows.map((r) => Number(r[0])).filter(Number.isFinite)) }
        }
        let refRead: { nonNull: number; values: Float64Array }
        let curRead: { nonNull: number; values: Float64Array }
        try {
          refRead = await numbers(reference.files)
          curRead = await numbers(current.files)
        } catch (error) {
          return fail(`feature ${feature} is not a number (${refTypes.get(feature)}): list it in \`categorical\` (${(error as Error).message.split('\n')[0]})`)
        }
        const ref = refRead.values
        const cur = curRead.values
        const edges = quantileEdges(ref, bins)
        const refCounts = binCounts(ref, edges)
        const curCounts = binCounts(cur, edges)
        const value = psi(refCounts, curCounts)
        const ks = ksStatistic(ref, cur)
        results[feature] = {
          kind: 'numeric', drifted: value > limits.psi || (limits.ks !== undefined && ks > limits.ks), psi: value, ks, ks_p_value: ksPValue(ks, ref.length, cur.length), rows: [ref.length, cur.length], null_fraction: [nullShare(refRead.nonNull, reference.rows), nullShare(curRead.nonNull, current.rows)],
          histogram: { edges, reference: refCounts.map((n) => share(n, ref.length)), current: curCounts.map((n) => share(n, cur.length)) },
        }
      }
    }
  } finally {
    duck.close()
  }
  if (ctx.signal.aborted) return { ok: false, kind: 'cancelled', retryable: false, message: 'stopped' }

  const drifted = Object.entries(results).filter(([, r]) => r.drifted).map(([name]) => name)
  ctx.log.info(`drift of ${current.dataset}@${current.version} against ${reference.dataset}@${reference.version}${modelVersion ? ` (training set of ${modelVersion.model} version ${modelVersion.version})` : ''}:`)
  for (const [name, r] of Object.entries(results)) {
    const figures = r.kind === 'numeric' ? `PSI ${r.psi.toFixed(4)} (max ${limits.psi}), KS ${r.ks.toFixed(4)}${limits.ks !== undefined ? ` (max ${limits.ks})` : ''}` : `chi2 ${r.chi2.toFixed(3)}, ${r.dof} dof, p ${r.p_value.toExponential(3)} (min ${limits.chi2})`
    ctx.log.info(`  ${r.drifted ? 'DRIFT' : 'ok   '} ${name}: ${figures}`)
  }
  return {
    ok: true,
    outputs: {
      drifted: drifted.length > 0,
      drifted_features: drifted,
      features: results,
      reference: { dataset: reference.dataset, version: reference.version, ...(modelVersion ? { model: modelVersion.model, model_version: modelVersion.version } : {}) },
      current: { dataset: current.dataset, version: current.version },
      thresholds: { psi: limits.psi, ks: limits.ks ?? null, chi2_p_value: limits.chi2 },
    },
  }
}

const share = (n: number, total: number): number => (total === 0 ? 0 : n / total)
/** The share of a version's rows (its recorded row count) whose value is null. */
const nullShare = (nonNull: number, total: number): number => (total === 0 ? 0 : 1 - nonNull / total)
const sum = (values: Iterable<number>): number => {
  let total = 0
  for (const v of values) total += v
  return total
}
