import paramsSchema from '../schemas/operators/ingest.params.schema.json' with { type: 'json' }
import { defineOperator } from './define.ts'

export const ingest = defineOperator({
  type: 'ingest',
  summary: 'loads a source into a named, versioned dataset, with expectations',
  paramsSchema,
})
