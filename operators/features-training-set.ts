import paramsSchema from '../schemas/operators/features.training_set.params.schema.json' with { type: 'json' }
import { defineOperator } from './define.ts'

export const featuresTrainingSet = defineOperator({
  type: 'features.training_set',
  summary: 'point-in-time-correct join of labels with feature views',
  paramsSchema,
})
