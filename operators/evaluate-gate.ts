import paramsSchema from '../schemas/operators/evaluate.gate.params.schema.json' with { type: 'json' }
import { defineOperator } from './define.ts'
import type { OperatorContext, OperatorResult } from './define.ts'
import type { GateParams } from './evaluate-gate/run.ts'
import { checkGateParams } from './evaluate-gate/model-name.ts'

/** See operators/evaluate-gate/run.ts; loaded when a task runs (ONNX Runtime and DuckDB stay out of `cairn validate` and the scheduler). */
export const evaluateGate = defineOperator({
  type: 'evaluate.gate',
  summary: 'scores a model on a holdout set with ONNX Runtime and checks thresholds',
  paramsSchema,
  usesWorkdir: false,
  checkParams: checkGateParams,
  async run(params: GateParams, ctx: OperatorContext): Promise<OperatorResult> {
    const { runEvaluateGate } = await import('./evaluate-gate/run.ts')
    return runEvaluateGate(params, ctx)
  },
})
