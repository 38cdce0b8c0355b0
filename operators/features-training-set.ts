import paramsSchema from '../schemas/operators/features.training_set.params.schema.json' with { type: 'json' }
import { FeatureRequestError } from '../engine/data/feature-request-error.ts'
import { parseDuration } from '../engine/time/duration.ts'
import { abortedResult, defineOperator, noDataServicesResult } from './define.ts'
import type { OperatorContext, OperatorResult } from './define.ts'

interface Params {
  labels: string
  timestamp: string
  label: string
  features: string[]
  dataset: string
  split?: { holdout: number; seed?: number }
  labels_window?: string
}

/**
 * The point-in-time join of a labels dataset with feature views (SPEC section 7), published as a
 * dataset (and `<dataset>_holdout` with `split`) in one publish.
 */
export const featuresTrainingSet = defineOperator({
  type: 'features.training_set',
  summary: 'point-in-time-correct join of labels with feature views',
  paramsSchema,
  usesWorkdir: false,
  async run(raw: Record<string, unknown>, ctx: OperatorContext): Promise<OperatorResult> {
    const params = raw as unknown as Params
    if (!ctx.data) return noDataServicesResult()
    try {
      const { labels_window: window, ...request } = params
      // The schema's pattern admits only what parseDuration reads.
      const labelsWindow = window === undefined ? undefined : { start: new Date(ctx.interval.end.getTime() - parseDuration(window)!), end: ctx.interval.end }
      const result = await ctx.data.features.trainingSet({ ...request, ...(labelsWindow ? { labelsWindow } : {}), signal: ctx.signal, log: (message, fields) => ctx.log.info(message, fields) })
      const main = result.published.version
      const outputs: Record<string, unknown> = { dataset: main.dataset, version: main.version, rows: main.rows }
      if (result.holdout) {
        outputs.holdout_dataset = result.holdout.version.dataset
        outputs.holdout_version = result.holdout.version.version
        outputs.holdout_rows = result.holdout.version.rows
      }
      ctx.log.info(`training set ${main.dataset}@${main.version}: ${main.rows} rows` + (result.holdout ? `, holdout ${result.holdout.version.dataset}@${result.holdout.version.version}: ${result.holdout.version.rows} rows` : ''),
        { inputs: result.inputs })
      return { ok: true, outputs }
    } catch (error) {
      if (ctx.signal.aborted) return abortedResult(ctx.signal)
      if (error instanceof FeatureRequestError) return { ok: false, kind: 'invalid_params', retryable: false, message: error.message }
      throw error
    }
  },
})
