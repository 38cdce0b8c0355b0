/**
 * From a source column to a dataset column, in SQL: the typed value and, for a row that does not
 * fit, the reason it is a bad row. Every source loads its values into DuckDB as text (or its own
 * native type) and goes through these same expressions, so csv, jsonl, parquet, http and postgres
 * follow one set of type rules (SPEC section 7):
 *
 * - integer: whole numbers only ("1.5" is refused; DuckDB's own cast would round it)
 * - timestamp: ISO-8601, a value without an offset is UTC (DuckDB without ICU: TIMESTAMPTZ is UTC)
 * - an empty text is a missing value for every type but string
 */
import type { ColumnType } from '../column-types.ts'
import { duckDbType } from '../column-types.ts'
import { sqlIdent, sqlString } from '../duckdb.ts'
import type { DuckDb } from '../duckdb.ts'

export interface ColumnPlan {
  name: string
  type: ColumnType
  /** False when declared `nullable: false`. */
  nullable: boolean
  /**
   * How the source holds the value: as text, in a DuckDB type of its own, or `exact`: already
   * converted to this very type by a reader that refuses (as a bad row) what does not convert.
   */
  source: 'text' | 'native' | 'exact'
  /**
   * The type was inferred from a sample of the values (the CSV fast path, `checkedSelect`): a value it
   * does not fit by `fitsText` is then a problem too, so that the caller infers again from every value.
   */
  sampled?: boolean
}

/** The types an undeclared text column may get, narrowest first: it gets the first that every value fits. */
const INFERABLE = ['integer', 'number', 'boolean', 'date', 'timestamp'] as const satisfies readonly ColumnType[]
/** ISO-8601: a date, optionally a time (`T` or a space) and an offset; no offset is UTC. */
const ISO_TIMESTAMP = '[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?)?\\s*(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?'

/**
 * Whether the text `v` (a SQL expression, not empty) reads as `type` for inference: plain decimal
 * integers and numbers (not `inf`, `0x10` or `1_000`), `true`/`false` in any case, ISO dates and ISO
 * timestamps. Whatever fits also converts by `castExpression`.
 */
export function fitsText(v: string, type: (typeof INFERABLE)[number]): string {
  // One pattern over the raw text (outer spaces allowed where DuckDB's cast allows them), then the cast where the pattern cannot tell (ranges, calendar).
  const cast = type === 'boolean' ? undefined : type === 'timestamp' ? timestampCast(v) : `TRY_CAST(${v} AS ${duckDbType(type)})`
  return cast === undefined ? fitsPattern(v, type) : `(${fitsPattern(v, type)} AND ${cast} IS NOT NULL)`
}

/** The pattern part of `fitsText`: with a cast of `v` to `type` that succeeds, the whole of it. */
function fitsPattern(v: string, type: (typeof INFERABLE)[number]): string {
  switch (type) {
    case 'integer': return `regexp_full_match(${v}, '\\s*[+-]?[0-9]{1,19}\\s*')`
    case 'number': return `regexp_full_match(${v}, '\\s*[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?\\s*')`
    case 'boolean': return `regexp_full_match(${v}, '[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]')`
    case 'date': return `regexp_full_match(${v}, '\\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\\s*')`
    case 'timestamp': return `regexp_full_match(${v}, '\\s*${ISO_TIMESTAMP}\\s*')`
  }
}

/**
 * A text value as a timestamp. DuckDB's cast reads ISO-8601 except a time without seconds followed by
 * `Z` or an offset (`10:00Z`, `10:00+01:00`) and a lowercase `z` (RFC 3339 allows it); only the values
 * it refused are rewritten to the spelling it reads (`10:00:00Z`) and cast again.
 */
function timestampCast(v: string): string {
  const withSeconds = `regexp_replace(${v}, '^(\\s*[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2})(\\s*[Zz+-])', '\\1:00\\2')`
  return `coalesce(TRY_CAST(${v} AS TIMESTAMPTZ), TRY_CAST(regexp_replace(${withSeconds}, 'z(\\s*)$', 'Z\\1') AS TIMESTAMPTZ))`
}

/** Types a value of one candidate always fits too (by `fitsText`): a plain integer is a number, an ISO date a timestamp. */
const ALSO_FITS: Partial<Record<(typeof INFERABLE)[number], (typeof INFERABLE)[number]>> = { integer: 'number', date: 'timestamp' }

/**
 * The inferred type of each text column of `from` (column expressions `values`): the first of
 * integer, number, boolean, date, timestamp that every non-empty value fits, else string; a column
 * with no value at all is a string, or `undefined` when `undecidedIfEmpty` (a sample that saw none).
 * One pass over `from`: each value gets the first candidate it fits (its class, a bit), a column the
 * set of its values' classes, and the column's type is the first candidate that every class in the
 * set fits. Candidates are tried narrowest first, so an integer column costs one check per value.
 */
export async function inferTextTypes(duck: DuckDb, from: string, values: readonly string[], candidates: readonly (typeof INFERABLE)[number][] = INFERABLE, undecidedIfEmpty = false): Promise<Array<ColumnType | undefined>> {
  if (values.length === 0) return []
  const none = 1 << candidates.length
  const classes = values.map((v, i) => `bit_or(CASE WHEN NULLIF(${v}, '') IS NULL THEN 0 ${candidates.map((type, k) => `WHEN ${fitsText(v, type)} THEN ${1 << k}`).join(' ')} ELSE ${none} END)::INTEGER AS c${i}`)
  const [row] = await duck.rows<Record<string, number | null>>(`SELECT ${classes.join(', ')} FROM ${from}`)
  return values.map((_v, i) => {
    const seen = row![`c${i}`] ?? 0
    if (seen === 0) return undecidedIfEmpty ? undefined : 'string'
    const type = candidates.find((type) => candidates.every((c, k) => (seen & (1 << k)) === 0 || c === type || ALSO_FITS[c] === type) && (seen & none) === 0)
    return type ?? 'string'
  })
}

/** Longest raw value quoted in a reason: a bad row's full text is kept beside it anyway. */
const QUOTED_MAX = 60

const TYPE_WORDS: Record<ColumnType, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean',
  timestamp: 'an ISO-8601 timestamp',
  date: 'a date',
}

/** The typed value of `raw` (a SQL expression) as `plan.type`, NULL when it does not convert. */
export function castExpression(raw: string, plan: ColumnPlan): string {
  if (plan.source === 'exact') return raw
  if (plan.type === 'string') return plan.source === 'text' ? raw : `CAST(${raw} AS VARCHAR)`
  const value = plan.source === 'text' ? `NULLIF(${raw}, '')` : raw
  if (plan.type === 'integer') {
    // DuckDB's cast rounds "1.5" to 2: a whole number is one whose value as a double is the same.
    return `CASE WHEN TRY_CAST(${value} AS DOUBLE) = TRY_CAST(${value} AS BIGINT) THEN TRY_CAST(${value} AS BIGINT) END`
  }
  if (plan.type === 'timestamp' && plan.source === 'text') return timestampCast(value)
  return `TRY_CAST(${value} AS ${duckDbType(plan.type)})`
}

/** NULL for a value that fits, else the reason (text) naming the column and the value. */
export function problemExpression(raw: string, plan: ColumnPlan, typed: string): string {
  const present = plan.source === 'text' && plan.type !== 'string' ? `NULLIF(${raw}, '') IS NOT NULL` : `${raw} IS NOT NULL`
  const shown = `left(CAST(${raw} AS VARCHAR), ${QUOTED_MAX})`
  const checks: string[] = []
  if (plan.type !== 'string' && plan.source !== 'exact') {
    checks.push(`WHEN ${present} AND ${typed} IS NULL THEN ${sqlString(`column ${plan.name}: `)} || to_json(${shown})::VARCHAR || ${sqlString(` is not ${TYPE_WORDS[plan.type]}`)}`)
  }
  if (!plan.nullable) checks.push(`WHEN NOT (${present}) THEN ${sqlString(`column ${plan.name} is empty but declared nullable: false`)}`)
  return checks.length === 0 ? 'NULL' : `CASE ${checks.join(' ')} END`
}

/**
 * `SELECT <typed columns>, <first problem> AS __problem FROM (<from>)`, where `rawOf(name)` gives the
 * SQL expression of a column's source value.
 */
export function typedSelect(plans: readonly ColumnPlan[], rawOf: (plan: ColumnPlan, index: number) => string, from: string, more: { firstProblem?: string; extraColumns?: string } = {}): string {
  const typed = plans.map((p, i) => castExpression(rawOf(p, i), p))
  const problems = [...(more.firstProblem ? [more.firstProblem] : []), ...plans.map((p, i) => problemExpression(rawOf(p, i), p, typed[i]!)).filter((p) => p !== 'NULL')]
  const problem = problems.length === 0 ? 'CAST(NULL AS VARCHAR)' : problems.length === 1 ? problems[0]! : `coalesce(${problems.join(', ')})`
  return `SELECT ${plans.map((p, i) => `${typed[i]} AS ${sqlIdent(p.name)}`).join(', ')}, ${problem} AS __problem${more.extraColumns ? `, ${more.extraColumns}` : ''} FROM ${from}`
}

/**
 * The fast path's form of `typedSelect` over CSV text: `SELECT <typed columns> FROM (<from>)`, raising
 * `error(<failMark>)` on the first row that `typedSelect` would mark with a problem (the caller then
 * takes the table path, which names it). Each value is converted once: the conversion of a sampled
 * column includes its inference pattern (a value outside it converts to NULL), and the checks look
 * at the converted values only (CASE conditions share no work with the select list in DuckDB, so the
 * `__problem` form converts every value twice).
 */
export function checkedSelect(plans: readonly ColumnPlan[], rawOf: (plan: ColumnPlan) => string, from: string, failMark: string): string {
  const typed = plans.map((p, i) => `${checkedCast(rawOf(p), p)} AS __t${i}`)
  const raws = plans.flatMap((p, i) => (p.source === 'text' && p.type !== 'string' ? [`${rawOf(p)} AS __r${i}`] : []))
  const ok = plans.flatMap((p, i) => [
    ...(p.source === 'text' && p.type !== 'string' ? [`(__t${i} IS NOT NULL OR NULLIF(__r${i}, '') IS NULL)`] : []),
    ...(p.nullable ? [] : [`__t${i} IS NOT NULL`]),
  ])
  const columns = plans.map((p, i) => (i === 0 && ok.length > 0 ? `CASE WHEN ${ok.join(' AND ')} THEN __t0 ELSE error(${sqlString(failMark)}) END` : `__t${i}`) + ` AS ${sqlIdent(p.name)}`)
  return `SELECT ${columns.join(', ')} FROM (SELECT ${[...typed, ...raws].join(', ')} FROM ${from})`
}

/** `castExpression`, and for a sampled column NULL also for a value outside its inference pattern. */
function checkedCast(raw: string, plan: ColumnPlan): string {
  if (!plan.sampled || plan.source !== 'text' || plan.type === 'string') return castExpression(raw, plan)
  if (plan.type === 'boolean') return `CASE WHEN ${raw} = 'true' THEN true WHEN ${raw} = 'false' THEN false WHEN ${fitsPattern(raw, 'boolean')} THEN lower(${raw}) = 'true' END`
  // Within the pattern, DuckDB's cast is exact (no fraction for it to round away).
  return `CASE WHEN ${fitsPattern(raw, plan.type as (typeof INFERABLE)[number])} THEN ${plan.type === 'timestamp' ? timestampCast(raw) : `TRY_CAST(${raw} AS ${duckDbType(plan.type)})`} END`
}

export function describeType(type: ColumnType): string {
  return TYPE_WORDS[type]
}
