/** The rendered params of `ingest` (already valid against schemas/operators/ingest.params.schema.json). */
import type { ColumnType } from '../../engine/data/column-types.ts'
import type { CsvOptions, FileFormat } from '../../engine/data/reader/csv.ts'


export type IngestSource =
  | { kind: FileFormat; path: string; options?: CsvOptions }
  | { kind: 'http'; url: string; format: FileFormat; headers?: Record<string, string>; options?: CsvOptions; max_bytes?: number; timeout?: string; retries?: number }
  | { kind: 'postgres'; connection: string; query: string; batch_rows?: number }

export interface ColumnDeclaration {
  type: ColumnType
  nullable?: boolean
}

export interface Expectations {
  min_rows?: number
  max_rows?: number
  not_null?: string[]
  unique?: string[]
  ranges?: Record<string, { min?: number; max?: number }>
  values?: Record<string, Array<string | number | boolean>>
}

export type IngestMode = 'append' | 'replace' | 'interval'

export interface IngestParams {
  source: IngestSource
  dataset: string
  columns?: Record<string, ColumnDeclaration>
  mode?: IngestMode
  time_column?: string
  expect?: Expectations
  on_bad_rows?: 'fail' | 'quarantine'
  max_bad_rows?: number
}

/** Declared columns in the order written. */
export function declaredColumns(params: IngestParams): Map<string, { type: ColumnType; nullable: boolean }> {
  return new Map(Object.entries(params.columns ?? {}).map(([name, c]) => [name, { type: c.type, nullable: c.nullable ?? true }]))
}
