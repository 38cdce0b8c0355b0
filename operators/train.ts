import paramsSchema from '../schemas/operators/train.params.schema.json' with { type: 'json' }
import { defineOperator } from './define.ts'
import type { OperatorContext, OperatorResult } from './define.ts'
import type { TrainParams } from './train/run.ts'

/** See operators/train/run.ts; loaded when a task runs (validating DAG files needs none of it). */
export const train = defineOperator({
  type: 'train',
  summary: 'runs training locally, over SSH or on Slurm, with the built-in trainer or any command',
  paramsSchema,
  async run(params: TrainParams, ctx: OperatorContext): Promise<OperatorResult> {
    const { runTrain } = await import('./train/run.ts')
    return runTrain(params, ctx)
  },
})
