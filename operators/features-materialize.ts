import paramsSchema from '../schemas/operators/features.materialize.params.schema.json' with { type: 'json' }
import { FeatureRequestError } from '../engine/data/feature-request-error.ts'
import { abortedResult, defineOperator, noDataServicesResult } from './define.ts'
import type { OperatorContext, OperatorResult } from './define.ts'

interface Params {
  feature_view: string
  online?: boolean
}

/**
 * Materializes a feature view as of the run's data interval end (a manual run: its trigger time)
 * into the offline store and, when online, the online store (SPEC section 7).
 */
export const featuresMaterialize = defineOperator({
  type: 'features.materialize',
  summary: 'computes a feature view for a run data interval into the offline and online stores',
  paramsSchema,
  usesWorkdir: false,
  async run(raw: Record<string, unknown>, ctx: OperatorContext): Promise<OperatorResult> {
    const params = raw as unknown as Params
    if (!ctx.data) return noDataServicesResult()
    try {
      const result = await ctx.data.features.materialize({
        view: params.feature_view,
        intervalStart: ctx.interval.start,
        intervalEnd: ctx.interval.end,
        signal: ctx.signal,
        ...(params.online !== undefined ? { online: params.online } : {}),
        log: (message, fields) => ctx.log.info(message, fields),
      })
      ctx.log.info(`feature view ${result.view} definition ${result.definitionVersion}: ${result.rowsOffline} offline rows as of ${ctx.interval.end.toISOString()}` +
        (result.rowsOnline === null ? ' (offline only)' : `, ${result.rowsOnline} online rows written`))
      return { ok: true, outputs: { feature_view: result.view, version: result.definitionVersion, rows_offline: result.rowsOffline, rows_online: result.rowsOnline ?? 0 } }
    } catch (error) {
      if (ctx.signal.aborted) return abortedResult(ctx.signal)
      if (error instanceof FeatureRequestError) return { ok: false, kind: 'invalid_params', retryable: false, message: error.message }
      throw error
    }
  },
})
