/**
 * JSON Lines into `loaded`. Each file is first read by DuckDB as plain lines (one text column, no
 * quoting), so that a malformed line is just a row whose JSON does not parse, with its line number:
 * DuckDB's own read_json would stop at it or skip it silently. Columns are the keys of the objects
 * (in order of first appearance across the files); undeclared ones are typed from their JSON values,
 * strings that all read as dates or ISO timestamps becoming dates or timestamps.
 */
import { sqlIdent, sqlString } from '../duckdb.ts'
import type { ColumnType } from '../column-types.ts'
import { dataInvalid } from './failure.ts'
import type { ReadFailure } from './failure.ts'
import { LOADED, countLoaded, missingColumnsMessage, planColumns } from './loaded.ts'
import type { BadRow, LoadContext, LoadedPart, LoadedSource } from './loaded.ts'
import type { SourceFile } from './csv.ts'
import { inferTextTypes, typedSelect } from './typing.ts'

const MAX_LINE_BYTES = 64 * 1024 * 1024
/** A JSON text cannot hold a raw control character, so no valid line is ever split at it. */
const NEVER_IN_JSON = '\u0001'

export async function loadJsonl(files: readonly SourceFile[], ctx: LoadContext): Promise<LoadedSource | ReadFailure> {
  const rejected: BadRow[][] = []
  for (const [i, file] of files.entries()) {
    await ctx.duck.run(
      `CREATE TABLE ${lines(i)} AS SELECT j FROM read_csv($1, columns = {'j': 'VARCHAR'}, header = false, delim = $2, quote = '', escape = '', auto_detect = false, ` +
      `store_rejects = true, rejects_table = 'jsonl_rejects_${i}', rejects_scan = 'jsonl_rejects_scan_${i}', max_line_size = ${MAX_LINE_BYTES})`,
      [file.path, NEVER_IN_JSON],
    )
    const rows = await ctx.duck.rows<{ line: string }>(`SELECT DISTINCT line::VARCHAR AS line FROM jsonl_rejects_${i} ORDER BY line`)
    rejected.push(rows.map((r) => ({ source: file.label, unit: 'line', line: Number(r.line), reason: 'not valid JSON (holds a control character or is too long)', raw: null })))
  }
  const all = files.map((_f, i) => `SELECT j FROM ${lines(i)}`).join(' UNION ALL ')
  const objects = `(${all}) WHERE json_valid(j) AND json_type(j) = 'OBJECT'`
  const [structure] = await ctx.duck.rows<{ s: string | null }>(`SELECT json_group_structure(j::JSON)::VARCHAR AS s FROM ${objects}`)
  const shape = structure?.s ? (JSON.parse(structure.s) as Record<string, unknown>) : {}
  const names = typeof shape === 'object' && shape !== null && !Array.isArray(shape) ? Object.keys(shape) : []
  const textual = await textualTypes(ctx, objects, names.filter((n) => shape[n] === 'VARCHAR' && !ctx.declared.has(n)))
  const label = files.map((f) => f.label).join(', ')
  if (names.length === 0) return dataInvalid(`${label}: no line holds a JSON object, so there are no columns to load`)
  const plans = planColumns(names, (name) => ({ type: textual.get(name) ?? jsonType(shape[name]), source: 'text' }), () => 'text', ctx, label)
  if ('missing' in plans) return dataInvalid(missingColumnsMessage(label, plans.missing, names))

  const paths = `[${names.map((n) => sqlString(pointer(n))).join(', ')}]`
  const parts: LoadedPart[] = []
  for (const [i, file] of files.entries()) {
    const from = `(SELECT j, rowid AS __ord, json_valid(j) AS __valid, CASE WHEN json_valid(j) AND json_type(j) = 'OBJECT' THEN json_extract_string(j, ${paths}) END AS __v FROM ${lines(i)} WHERE j IS NOT NULL AND trim(j) <> '')`
    const firstProblem = `CASE WHEN NOT __valid THEN 'not valid JSON' WHEN __v IS NULL THEN 'not a JSON object' END`
    const select = typedSelect(plans, (_p, index) => `__v[${index + 1}]`, from, { firstProblem, extraColumns: '__ord' })
    const before = i === 0 ? 0 : await countLoaded(ctx.duck)
    await ctx.duck.run(i === 0 ? `CREATE TABLE ${LOADED} AS ${select}` : `INSERT INTO ${LOADED} ${select}`)
    const end = await countLoaded(ctx.duck)
    const rejectedLines = rejected[i]!.map((r) => r.line)
    const table = lines(i)
    parts.push({
      source: file.label,
      unit: 'line',
      firstRowid: before,
      endRowid: end,
      rejects: rejected[i]!,
      async locate(rows) {
        const ords = rows.map((r) => r.ord ?? 0)
        const texts = new Map((await ctx.duck.rows<{ ord: string; j: string }>(`SELECT rowid::VARCHAR AS ord, j FROM ${table} WHERE rowid IN (${ords.join(', ') || 'NULL'})`)).map((r) => [Number(r.ord), r.j]))
        return new Map(rows.map((r) => [r.rowid, { line: lineOfOrdinal(r.ord ?? 0, rejectedLines), raw: texts.get(r.ord ?? 0) ?? null }]))
      },
    })
  }
  return { plans, parts, hasOrd: true }
}

const lines = (i: number) => sqlIdent(`jsonl_lines_${i}`)

/** A key as a JSON pointer (RFC 6901), which DuckDB's JSON functions take as a path. */
function pointer(key: string): string {
  return `/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`
}

function jsonType(structure: unknown): ColumnType {
  if (structure === 'BOOLEAN') return 'boolean'
  if (structure === 'UBIGINT' || structure === 'BIGINT') return 'integer'
  if (structure === 'DOUBLE') return 'number'
  // Strings, nulls, nested objects and arrays (kept as their JSON text), mixed types.
  return 'string'
}

/** Undeclared string keys whose every value reads as an ISO date, or as an ISO timestamp (typing.ts's text rules). */
async function textualTypes(ctx: LoadContext, objects: string, keys: readonly string[]): Promise<Map<string, ColumnType>> {
  const types = await inferTextTypes(ctx.duck, objects, keys.map((key) => `json_extract_string(j, ${sqlString(pointer(key))})`), ['date', 'timestamp'])
  return new Map(keys.flatMap((key, i) => (types[i] === 'string' || types[i] === undefined ? [] : [[key, types[i]] as const])))
}

/** The line of the `ordinal`-th line DuckDB kept (0-based), given the lines it rejected (sorted). */
export function lineOfOrdinal(ordinal: number, rejectedSorted: readonly number[]): number {
  let line = ordinal + 1
  for (const r of rejectedSorted) {
    if (r <= line) line++
    else break
  }
  return line
}
