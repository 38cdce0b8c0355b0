import paramsSchema from '../schemas/operators/predict.batch.params.schema.json' with { type: 'json' }
import { defineOperator } from './define.ts'
import type { OperatorContext, OperatorResult } from './define.ts'
import type { PredictParams } from './predict-batch/run.ts'

/** See operators/predict-batch/run.ts; loaded when a task runs (ONNX Runtime and DuckDB stay out of `cairn validate` and the scheduler). */
export const predictBatch = defineOperator({
  type: 'predict.batch',
  summary: 'scores a dataset with a registered model version into a new dataset',
  paramsSchema,
  usesWorkdir: false,
  async run(params: PredictParams, ctx: OperatorContext): Promise<OperatorResult> {
    const { runPredictBatch } = await import('./predict-batch/run.ts')
    return runPredictBatch(params, ctx)
  },
})
