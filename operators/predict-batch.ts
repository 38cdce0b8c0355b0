import paramsSchema from '../schemas/operators/predict.batch.params.schema.json' with { type: 'json' }
import { defineOperator } from './define.ts'

export const predictBatch = defineOperator({
  type: 'predict.batch',
  summary: 'scores a dataset with a registered model version into a new dataset',
  paramsSchema,
})
