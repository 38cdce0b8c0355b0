/**
 * Expectations (min_rows, max_rows, not_null, unique, ranges, values) computed by DuckDB over the
 * rows this task loads (bad rows set aside and, in interval mode, rows outside the interval left
 * out; the previous version's rows are not re-checked). Each gives a line of the report that is
 * stored with the version: what was expected, what was observed, and whether it passed.
 */
import type { DuckDb } from '../../engine/data/duckdb.ts'
import { sqlIdent, sqlString } from '../../engine/data/duckdb.ts'
import type { ColumnType } from '../../engine/data/column-types.ts'
import { invalid } from '../../engine/data/reader/failure.ts'
import type { ReadFailure } from '../../engine/data/reader/failure.ts'
import type { Expectations } from './params.ts'

export interface ExpectationResult {
  expectation: 'min_rows' | 'max_rows' | 'not_null' | 'unique' | 'range' | 'values'
  columns?: string[]
  expected: unknown
  observed: unknown
  passed: boolean
}

const NUMERIC: readonly ColumnType[] = ['integer', 'number']

/** Params that name a column the rows do not have (or a range on a non-numeric column). */
export function checkExpectationColumns(expect: Expectations, types: ReadonlyMap<string, ColumnType>): ReadFailure | undefined {
  const named = [...(expect.not_null ?? []), ...(expect.unique ?? []), ...Object.keys(expect.ranges ?? {}), ...Object.keys(expect.values ?? {})]
  const unknown = [...new Set(named.filter((c) => !types.has(c)))]
  if (unknown.length > 0) return invalid(`expect names column${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}, which the rows do not have (columns: ${[...types.keys()].join(', ')})`)
  for (const column of Object.keys(expect.ranges ?? {})) {
    if (!NUMERIC.includes(types.get(column)!)) return invalid(`expect.ranges.${column}: column ${column} is ${types.get(column)}, ranges apply to integer and number columns`)
  }
  for (const [column, values] of Object.entries(expect.values ?? {})) {
    const type = types.get(column)!
    const bad = values.find((v) => literal(v, type) === undefined)
    if (bad !== undefined) return invalid(`expect.values.${column}: ${JSON.stringify(bad)} cannot be a value of column ${column} (${type})`)
  }
  return undefined
}

export async function checkExpectations(duck: DuckDb, table: string, expect: Expectations, types: ReadonlyMap<string, ColumnType>): Promise<ExpectationResult[]> {
  const select: string[] = ['count(*)::VARCHAR AS n']
  const notNull = expect.not_null ?? []
  notNull.forEach((c, i) => select.push(`count(*) FILTER (WHERE ${sqlIdent(c)} IS NULL)::VARCHAR AS nn${i}`))
  const ranges = Object.entries(expect.ranges ?? {})
  ranges.forEach(([c, r], i) => {
    const col = sqlIdent(c)
    const outside = [r.min !== undefined ? `${col} < ${Number(r.min)}` : undefined, r.max !== undefined ? `${col} > ${Number(r.max)}` : undefined].filter(Boolean).join(' OR ')
    select.push(`min(${col})::DOUBLE AS rmin${i}`, `max(${col})::DOUBLE AS rmax${i}`, `count(*) FILTER (WHERE ${outside})::VARCHAR AS rout${i}`)
  })
  const values = Object.entries(expect.values ?? {})
  values.forEach(([c, allowed], i) => {
    const type = types.get(c)!
    const list = allowed.map((v) => literal(v, type)!).join(', ')
    select.push(`count(*) FILTER (WHERE ${sqlIdent(c)} NOT IN (${list}))::VARCHAR AS vout${i}`, `list(DISTINCT CAST(${sqlIdent(c)} AS VARCHAR)) FILTER (WHERE ${sqlIdent(c)} NOT IN (${list}))[1:5] AS vseen${i}`)
  })
  const [row] = await duck.rows<Record<string, unknown>>(`SELECT ${select.join(', ')} FROM ${table}`)
  const r = row!
  const rows = Number(r.n)
  const report: ExpectationResult[] = []
  if (expect.min_rows !== undefined) report.push({ expectation: 'min_rows', expected: expect.min_rows, observed: rows, passed: rows >= expect.min_rows })
  if (expect.max_rows !== undefined) report.push({ expectation: 'max_rows', expected: expect.max_rows, observed: rows, passed: rows <= expect.max_rows })
  notNull.forEach((c, i) => {
    const nulls = Number(r[`nn${i}`])
    report.push({ expectation: 'not_null', columns: [c], expected: 0, observed: { nulls }, passed: nulls === 0 })
  })
  if (expect.unique && expect.unique.length > 0) {
    const cols = expect.unique.map(sqlIdent).join(', ')
    const [dup] = await duck.rows<{ keys: string; example: string | null }>(
      `SELECT count(*)::VARCHAR AS keys, CAST(min(to_json(k)) AS VARCHAR) AS example FROM (SELECT struct_pack(${expect.unique.map((c) => `${sqlIdent(c)} := ${sqlIdent(c)}`).join(', ')}) AS k FROM ${table} GROUP BY ${cols} HAVING count(*) > 1) d`,
    )
    const keys = Number(dup!.keys)
    report.push({ expectation: 'unique', columns: expect.unique, expected: 0, observed: { duplicated_keys: keys, ...(dup!.example ? { example: JSON.parse(dup!.example) as unknown } : {}) }, passed: keys === 0 })
  }
  ranges.forEach(([c, bounds], i) => {
    const outside = Number(r[`rout${i}`])
    report.push({ expectation: 'range', columns: [c], expected: bounds, observed: { min: r[`rmin${i}`] ?? null, max: r[`rmax${i}`] ?? null, outside }, passed: outside === 0 })
  })
  values.forEach(([c, allowed], i) => {
    const outside = Number(r[`vout${i}`])
    report.push({ expectation: 'values', columns: [c], expected: allowed, observed: { outside, unexpected: r[`vseen${i}`] ?? [] }, passed: outside === 0 })
  })
  return report
}

export function describeExpectation(e: ExpectationResult): string {
  const on = e.columns ? ` ${e.columns.join(', ')}` : ''
  return `${e.expectation}${on}: expected ${JSON.stringify(e.expected)}, observed ${JSON.stringify(e.observed)}`
}

function literal(value: string | number | boolean, type: ColumnType): string | undefined {
  switch (type) {
    case 'integer':
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? String(value) : undefined
    case 'boolean':
      return typeof value === 'boolean' ? String(value).toUpperCase() : undefined
    default:
      return `CAST(${sqlString(String(value))} AS ${type === 'string' ? 'VARCHAR' : type === 'date' ? 'DATE' : 'TIMESTAMPTZ'})`
  }
}
