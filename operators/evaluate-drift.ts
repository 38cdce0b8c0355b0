import paramsSchema from '../schemas/operators/evaluate.drift.params.schema.json' with { type: 'json' }
import { abortedResult, defineOperator, noDataServicesResult } from './define.ts'
import type { OperatorContext, OperatorResult } from './define.ts'

export interface DriftParams {
  /** Exactly one of `dataset` or `online`. */
  dataset?: string
  online?: { feature_view: string; window: string }
  /** Exactly one of `model` or `reference`. */
  model?: string
  reference?: string
  if_no_reference?: 'fail' | 'drifted'
  features?: string[]
  categorical?: string[]
  bins?: number
  thresholds?: { psi?: number; ks?: number; chi2_p_value?: number }
}

/**
 * Drift between a dataset and the training set of a model version (or another dataset version), per
 * feature. The comparison itself is in operators/drift/run-drift.ts, loaded when a task runs so that
 * validating DAGs never loads DuckDB.
 */
export const evaluateDrift = defineOperator({
  type: 'evaluate.drift',
  summary: 'compares a dataset (or the online features of a window) with a model\'s training set: PSI, KS, chi-squared per feature',
  paramsSchema,
  usesWorkdir: false,
  async run(raw: Record<string, unknown>, ctx: OperatorContext): Promise<OperatorResult> {
    if (!ctx.data) return noDataServicesResult()
    try {
      const { runDrift } = await import('./drift/run-drift.ts')
      return await runDrift(raw as unknown as DriftParams, ctx, ctx.data)
    } catch (error) {
      if (ctx.signal.aborted) return abortedResult(ctx.signal)
      throw error
    }
  },
})
