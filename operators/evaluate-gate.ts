import paramsSchema from '../schemas/operators/evaluate.gate.params.schema.json' with { type: 'json' }
import { defineOperator } from './define.ts'

export const evaluateGate = defineOperator({
  type: 'evaluate.gate',
  summary: 'scores a model on a holdout set with ONNX Runtime and checks thresholds',
  paramsSchema,
})
