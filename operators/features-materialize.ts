import paramsSchema from '../schemas/operators/features.materialize.params.schema.json' with { type: 'json' }
import { defineOperator } from './define.ts'

export const featuresMaterialize = defineOperator({
  type: 'features.materialize',
  summary: 'computes a feature view for a run data interval into the offline and online stores',
  paramsSchema,
})
