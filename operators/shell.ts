import paramsSchema from '../schemas/operators/shell.params.schema.json' with { type: 'json' }
import { defineOperator } from './define.ts'

export const shell = defineOperator({
  type: 'shell',
  summary: 'runs a command (argv, no shell) or a script with templated values passed as environment variables',
  paramsSchema,
})
