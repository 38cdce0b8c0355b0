import paramsSchema from '../schemas/operators/serve.rollout.params.schema.json' with { type: 'json' }
import { defineOperator } from './define.ts'

export const serveRollout = defineOperator({
  type: 'serve.rollout',
  summary: 'registers a model version and rolls it out in canary steps with automatic rollback',
  paramsSchema,
})
