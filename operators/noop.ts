import paramsSchema from '../schemas/operators/noop.params.schema.json' with { type: 'json' }
import { defineOperator } from './define.ts'
import type { OperatorResult } from './define.ts'

export const noop = defineOperator({
  type: 'noop',
  summary: 'does nothing; for structure and benchmarks',
  paramsSchema,
  paramsOptional: true,
  usesWorkdir: false,
  async run(): Promise<OperatorResult> {
    return { ok: true, outputs: {} }
  },
})
