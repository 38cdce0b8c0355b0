/**
 * The column types of SPEC section 7 and how they map onto DuckDB (and so Parquet). A timestamp is a
 * UTC instant (TIMESTAMPTZ); a CSV or JSONL value without an offset is read as UTC.
 */
export const COLUMN_TYPES = ['string', 'integer', 'number', 'boolean', 'timestamp', 'date'] as const
export type ColumnType = (typeof COLUMN_TYPES)[number]

export interface DatasetColumn {
  name: string
  type: ColumnType
}

const TO_DUCKDB: Record<ColumnType, string> = {
  string: 'VARCHAR',
  integer: 'BIGINT',
  number: 'DOUBLE',
  boolean: 'BOOLEAN',
  timestamp: 'TIMESTAMPTZ',
  date: 'DATE',
}

export function duckDbType(type: ColumnType): string {
  return TO_DUCKDB[type]
}

/**
 * The cairn type of a DuckDB column type (as DESCRIBE prints it), or undefined for types cairn does
 * not carry (lists, structs, blobs, ...). Naive timestamps count as timestamps: cairn reads them as UTC.
 */
export function columnTypeOf(duckDbTypeName: string): ColumnType | undefined {
  const t = duckDbTypeName.toUpperCase()
  if (t === 'VARCHAR' || t.startsWith('ENUM') || t === 'UUID') return 'string'
  if (/^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|INT[1248]|HUGEINT|UHUGEINT)$/.test(t)) return 'integer'
  if (t === 'DOUBLE' || t === 'FLOAT' || t === 'REAL' || t.startsWith('DECIMAL')) return 'number'
  if (t === 'BOOLEAN') return 'boolean'
  if (t.startsWith('TIMESTAMP')) return 'timestamp'
  if (t === 'DATE') return 'date'
  return undefined
}

export function isColumnType(value: unknown): value is ColumnType {
  return typeof value === 'string' && (COLUMN_TYPES as readonly string[]).includes(value)
}
