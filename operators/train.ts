import paramsSchema from '../schemas/operators/train.params.schema.json' with { type: 'json' }
import { defineOperator } from './define.ts'

export const train = defineOperator({
  type: 'train',
  summary: 'runs training locally, over SSH or on Slurm, with the built-in trainer or any command',
  paramsSchema,
})
