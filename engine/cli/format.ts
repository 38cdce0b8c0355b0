import { UsageError } from './io.ts'

export type OutputFormat = 'text' | 'json'

export function formatOption(value: string | undefined): OutputFormat {
  if (value === undefined || value === 'text') return 'text'
  if (value === 'json') return 'json'
  throw new UsageError(`--format must be text or json, not "${value}"`)
}
