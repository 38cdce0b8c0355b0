/**
 * evaluate.drift: reads each feature of the reference and the current side with DuckDB and computes
 * the statistics of engine/drift/statistics.ts. The current side is a dataset version, or the online
 * store's rows of a feature view in a window (read through the feature store and loaded into a DuckDB
 * table, a column `VIEW__FEATURE` per feature, as training sets name them). Nulls are left out of the
 * statistics and reported as each side's null fraction. The figures, with histograms (the reference's
 * quantile bins for numbers, the 20 most frequent categories), are the task's outputs with a `reason`,
 * and a table goes into its log. A model reference that names no version yet is drift, not a failure,
 * with `if_no_reference: drifted`.
 */
import type { DataServices } from '../../engine/data/data-services.ts'
import { openDuckDb, parquetScan, sqlIdent } from '../../engine/data/duckdb.ts'
import type { DuckDb } from '../../engine/data/duckdb.ts'
import { FeatureRequestError } from '../../engine/data/feature-request-error.ts'
import type { OnlineFeatureType, OnlineWindow } from '../../engine/data/feature-store.ts'
import { parseModelReference } from '../../engine/models/registry.ts'
import { parseDuration } from '../../engine/time/duration.ts'
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

/** One side of the comparison: where its rows are (a FROM clause), its columns' types and its row count. */
interface Side {
  label: string
  from: string
  types: Map<string, string>
  rows: number
  outputs: Record<string, unknown>
}

/** The table the online side's rows are loaded into. */
const ONLINE_TABLE = 'online_rows'

export async function runDrift(params: DriftParams, ctx: OperatorContext, data: DataServices): Promise<OperatorResult> {
  const bins = params.bins ?? 10
  const limits = { psi: params.thresholds?.psi ?? 0.2, ks: params.thresholds?.ks, chi2: params.thresholds?.chi2_p_value ?? 0.01 }
  const thresholds = { psi: limits.psi, ks: limits.ks ?? null, chi2_p_value: limits.chi2 }

  let reference: DatasetVersion | undefined
  let features = params.features
  let modelVersion: { model: string; version: number } | undefined
  if (params.model !== undefined) {
    const resolved = await data.models.resolve(params.model)
    if (!resolved.ok) {
      // A well-formed reference to a version or stage that does not exist (yet): nothing to compare with.
      const parsed = parseModelReference(params.model)
      if (parsed && params.if_no_reference === 'drifted') {
        const reason = 'stage' in parsed ? `no ${parsed.stage} version of model ${parsed.name} to compare with` : `model ${parsed.name} has no version ${parsed.version} to compare with`
        ctx.log.info(`${reason}: counted as drifted (if_no_reference: drifted)`)
        return { ok: true, outputs: { drifted: true, drifted_features: [], features: {}, reference: null, current: null, reason, thresholds } }
      }
      return fail(parsed ? `${resolved.message}; with \`if_no_reference: drifted\` the task would report drift instead` : resolved.message)
    }
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
  const ref: Side = {
    label: `${reference.dataset}@${reference.version}`,
    from: parquetScan(reference.files),
    types: new Map(reference.columns.map((c) => [c.name, c.type])),
    rows: reference.rows,
    outputs: { dataset: reference.dataset, version: reference.version, ...(modelVersion ? { model: modelVersion.model, model_version: modelVersion.version } : {}) },
  }

  let window: OnlineWindow | undefined
  let cur: Side
  if (params.online !== undefined) {
    const ms = parseDuration(params.online.window)
    if (ms === undefined || ms <= 0) return fail(`online.window ${JSON.stringify(params.online.window)} is not a duration (such as 7d or 12h)`)
    const end = ctx.interval.end
    try {
      window = await data.features.onlineWindow(params.online.feature_view, new Date(end.getTime() - ms), end)
    } catch (error) {
      if (error instanceof FeatureRequestError) return fail(error.message)
      throw error
    }
    const where = `feature view ${window.view} (definition ${window.definitionVersion}) in the window (${window.start.toISOString()}, ${window.end.toISOString()}]`
    if (window.expiredBefore) ctx.log.info(`the window ${params.online.window} is longer than the ttl of ${window.view}: rows materialized before ${window.expiredBefore.toISOString()} are expired at the window's end and left out`)
    if (window.rows.length === 0) return { ok: false, kind: 'data_invalid', retryable: false, message: `the online store holds no row of ${where}${window.expiredBefore ? ` that is not expired (before ${window.expiredBefore.toISOString()})` : ''}: nothing to compare` }
    ctx.log.info(`${window.rows.length} online rows of ${where}`)
    cur = {
      label: `online ${window.view} (definition ${window.definitionVersion}, ${window.start.toISOString()} to ${window.end.toISOString()})`,
      from: ONLINE_TABLE,
      types: new Map(window.features.map((f) => [onlineColumn(window!.view, f.name), f.type])),
      rows: window.rows.length,
      outputs: { online: window.view, definition_version: window.definitionVersion, window_start: window.start.toISOString(), window_end: window.end.toISOString(), rows: window.rows.length },
    }
  } else {
    const current = await data.datasets.resolve(params.dataset!)
    if (!current) return fail(`dataset ${JSON.stringify(params.dataset)} has no version`)
    cur = { label: `${current.dataset}@${current.version}`, from: parquetScan(current.files), types: new Map(current.columns.map((c) => [c.name, c.type])), rows: current.rows, outputs: { dataset: current.dataset, version: current.version } }
  }

  features ??= [...ref.types.keys()].filter((name) => cur.types.has(name))
  const missing = features.filter((f) => !ref.types.has(f) || !cur.types.has(f))
  if (missing.length > 0) {
    const fromRef = missing.some((f) => !ref.types.has(f))
    const fromCur = missing.some((f) => !cur.types.has(f))
    const hint = fromCur && window ? ` (its columns: ${[...cur.types.keys()].join(', ')})` : ''
    return fail(`feature${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing from ${fromRef ? `the reference ${ref.label}` : ''}${fromRef && fromCur ? ' or ' : ''}${fromCur ? cur.label : ''}${hint}`)
  }
  if (features.length === 0) return fail(`the reference ${ref.label} and ${cur.label} share no column to compare`)
  const categorical = new Set(params.categorical ?? features.filter((f) => CATEGORICAL_TYPES.has(ref.types.get(f)!)))

  const duck = await openDuckDb(data.duckdb)
  const results: Record<string, FeatureDrift> = {}
  try {
    if (window) await loadOnlineRows(duck, window)
    for (const feature of features) {
      if (ctx.signal.aborted) break
      const column = sqlIdent(feature)
      if (categorical.has(feature)) {
        const categoryCounts = async (side: Side): Promise<Map<string, number>> =>
          new Map((await duck.values(`SELECT CAST(${column} AS VARCHAR), count(*) FROM ${side.from} WHERE ${column} IS NOT NULL GROUP BY 1`)).map((r) => [String(r[0]), Number(r[1])]))
        const refCounts = await categoryCounts(ref)
        const curCounts = await categoryCounts(cur)
        const refRows = sum(refCounts.values())
        const curRows = sum(curCounts.values())
        const categories = [...new Set([...refCounts.keys(), ...curCounts.keys()])].sort((a, b) => (refCounts.get(b) ?? 0) + (curCounts.get(b) ?? 0) - (refCounts.get(a) ?? 0) - (curCounts.get(a) ?? 0) || a.localeCompare(b))
        const test = chiSquared(categories.map((c) => refCounts.get(c) ?? 0), categories.map((c) => curCounts.get(c) ?? 0))
        const shown = categories.slice(0, TOP_CATEGORIES)
        results[feature] = {
          kind: 'categorical', drifted: test.pValue < limits.chi2, chi2: test.statistic, dof: test.dof, p_value: test.pValue, rows: [refRows, curRows], null_fraction: [nullShare(refRows, ref.rows), nullShare(curRows, cur.rows)],
          histogram: { categories: shown, reference: shown.map((c) => share(refCounts.get(c) ?? 0, refRows)), current: shown.map((c) => share(curCounts.get(c) ?? 0, curRows)) },
        }
      } else {
        // Every non-null value, sorted: their count gives the null share, the finite ones the statistics.
        const numbers = async (side: Side): Promise<{ nonNull: number; values: Float64Array }> => {
          const rows = await duck.values(`SELECT CAST(${column} AS DOUBLE) FROM ${side.from} WHERE ${column} IS NOT NULL ORDER BY 1`)
          return { nonNull: rows.length, values: Float64Array.from(rows.map((r) => Number(r[0])).filter(Number.isFinite)) }
        }
        let refRead: { nonNull: number; values: Float64Array }
        let curRead: { nonNull: number; values: Float64Array }
        try {
          refRead = await numbers(ref)
          curRead = await numbers(cur)
        } catch (error) {
          return fail(`feature ${feature} is not a number (${ref.types.get(feature)}): list it in \`categorical\` (${(error as Error).message.split('\n')[0]})`)
        }
        const refValues = refRead.values
        const curValues = curRead.values
        const edges = quantileEdges(refValues, bins)
        const refCounts = binCounts(refValues, edges)
        const curCounts = binCounts(curValues, edges)
        const value = psi(refCounts, curCounts)
        const ks = ksStatistic(refValues, curValues)
        results[feature] = {
          kind: 'numeric', drifted: value > limits.psi || (limits.ks !== undefined && ks > limits.ks), psi: value, ks, ks_p_value: ksPValue(ks, refValues.length, curValues.length), rows: [refValues.length, curValues.length], null_fraction: [nullShare(refRead.nonNull, ref.rows), nullShare(curRead.nonNull, cur.rows)],
          histogram: { edges, reference: refCounts.map((n) => share(n, refValues.length)), current: curCounts.map((n) => share(n, curValues.length)) },
        }
      }
    }
  } finally {
    duck.close()
  }
  if (ctx.signal.aborted) return { ok: false, kind: 'cancelled', retryable: false, message: 'stopped' }

  const drifted = Object.entries(results).filter(([, r]) => r.drifted).map(([name]) => name)
  const compared = Object.keys(results).length
  const reason = drifted.length === 0 ? `no feature drifted (${compared} compared)` : `${drifted.length} of ${compared} feature${compared === 1 ? '' : 's'} drifted: ${drifted.join(', ')}`
  ctx.log.info(`drift of ${cur.label} against ${ref.label}${modelVersion ? ` (training set of ${modelVersion.model} version ${modelVersion.version})` : ''}:`)
  for (const [name, r] of Object.entries(results)) {
    const figures = r.kind === 'numeric' ? `PSI ${r.psi.toFixed(4)} (max ${limits.psi}), KS ${r.ks.toFixed(4)}${limits.ks !== undefined ? ` (max ${limits.ks})` : ''}` : `chi2 ${r.chi2.toFixed(3)}, ${r.dof} dof, p ${r.p_value.toExponential(3)} (min ${limits.chi2})`
    ctx.log.info(`  ${r.drifted ? 'DRIFT' : 'ok   '} ${name}: ${figures}`)
  }
  ctx.log.info(reason)
  return {
    ok: true,
    outputs: {
      drifted: drifted.length > 0,
      drifted_features: drifted,
      features: results,
      reference: ref.outputs,
      current: cur.outputs,
      reason,
      thresholds,
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

/** The name of an online feature's column: as features.training_set names it, so that it lines up with a training set. */
const onlineColumn = (view: string, feature: string): string => `${view}__${feature}`

const ONLINE_SQL_TYPES: Record<OnlineFeatureType, string> = { number: 'DOUBLE', boolean: 'BOOLEAN', string: 'VARCHAR' }

/** Loads the window's rows into ONLINE_TABLE, a column per feature (`VIEW__FEATURE`) of its value type. */
async function loadOnlineRows(duck: DuckDb, window: OnlineWindow): Promise<void> {
  const columns = window.features.map((f) => `${sqlIdent(onlineColumn(window.view, f.name))} ${ONLINE_SQL_TYPES[f.type]}`)
  await duck.run(`CREATE TABLE ${ONLINE_TABLE} (${columns.join(', ')})`)
  const appender = await duck.connection.createAppender(ONLINE_TABLE)
  try {
    for (const row of window.rows) {
      for (const f of window.features) {
        const value = row.features[f.name]
        if (f.type === 'number') {
          const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN
          if (Number.isFinite(n)) appender.appendDouble(n)
          else appender.appendNull()
        } else if (f.type === 'boolean') {
          if (typeof value === 'boolean') appender.appendBoolean(value)
          else appender.appendNull()
        } else if (value === null || value === undefined) appender.appendNull()
        else appender.appendVarchar(typeof value === 'string' ? value : JSON.stringify(value))
      }
      appender.endRow()
    }
  } finally {
    appender.closeSync()
  }
}
