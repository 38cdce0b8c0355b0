/**
 * What a source loader leaves behind: a DuckDB table `loaded` with the dataset's columns (typed by
 * typing.ts) and `__problem` (NULL for a good row, else why the row is bad), filled one part (file,
 * download, query) after another, plus the rows each part's reader refused outright (a CSV line with
 * too many fields, say) with their line numbers.
 */
import { sqlString } from '../duckdb.ts'
import type { DuckDb } from '../duckdb.ts'
import type { ColumnPlan } from './typing.ts'
import type { ColumnType } from '../column-types.ts'
import type { StagedVersion } from '../datasets.ts'

export const LOADED = 'loaded'

export interface BadRow {
  /** File name, URL or query: where the row came from (never with credentials). */
  source: string
  /** `line` for text formats, `row` for parquet and query results. */
  unit: 'line' | 'row'
  /** 1-based line (or row) number. */
  line: number
  reason: string
  /** The row's text as read, when the format has one. */
  raw: string | null
}

export interface LoadedPart {
  source: string
  unit: 'line' | 'row'
  /** rowids of `loaded` that came from this part: [firstRowid, endRowid). */
  firstRowid: number
  endRowid: number
  /** Rows the reader refused itself, in line order. */
  rejects: BadRow[]
  /** Line number and text of rows of `loaded`, given their rowid and their `__ord` (when the table has one). */
  locate(rows: ReadonlyArray<{ rowid: number; ord: number | null }>): Promise<Map<number, { line: number; raw: string | null }>>
}

export interface LoadedSource {
  plans: ColumnPlan[]
  parts: LoadedPart[]
  /** Whether `loaded` has an `__ord` column (the row's ordinal in its part), which `locate` then receives. */
  hasOrd: boolean
}

/**
 * Rows already written as Parquet files into the staged folder, in one pass from the source (the
 * CSV fast path: taken only when no row breaks a type or `nullable` rule, so the only bad rows are
 * those the reader refused, with their lines).
 */
export interface WrittenSource {
  written: true
  plans: ColumnPlan[]
  staged: StagedVersion
  /** Absolute paths inside `staged.dir`, in source order. */
  files: string[]
  rejects: BadRow[]
}

export interface LoadContext {
  duck: DuckDb
  declared: ReadonlyMap<string, { type: ColumnType; nullable: boolean }>
  /** Where the reader says what it inferred (a task's log, or the CLI's stderr). */
  log: { info(message: string): void }
}

/** Plans for the columns a source has, from the declarations and what was inferred; missing declared columns are named. */
export function planColumns(
  names: readonly string[],
  inferred: (name: string, index: number) => { type: ColumnType; source: ColumnPlan['source']; note?: string; sampled?: boolean },
  declaredSource: (name: string, type: ColumnType, index: number) => ColumnPlan['source'],
  ctx: LoadContext,
  source: string,
): ColumnPlan[] | { missing: string[] } {
  const missing = [...ctx.declared.keys()].filter((name) => !names.includes(name))
  if (missing.length > 0) return { missing }
  const notes: string[] = []
  const plans = names.map((name, i): ColumnPlan => {
    const declared = ctx.declared.get(name)
    if (declared) return { name, type: declared.type, nullable: declared.nullable, source: declaredSource(name, declared.type, i) }
    const guess = inferred(name, i)
    notes.push(`${name}: ${guess.type}${guess.note ? ` (${guess.note})` : ''}`)
    return { name, type: guess.type, nullable: true, source: guess.source, ...(guess.sampled ? { sampled: true } : {}) }
  })
  if (notes.length > 0) ctx.log.info(`${source}: inferred types of undeclared columns: ${notes.join(', ')}`)
  return plans
}

export function missingColumnsMessage(source: string, missing: readonly string[], has: readonly string[]): string {
  return `${source} has no column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (declared in columns); its columns are: ${has.join(', ') || 'none'}`
}

export async function countLoaded(duck: DuckDb): Promise<number> {
  const [row] = await duck.rows<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM ${LOADED}`)
  return Number(row!.n)
}

export async function loadedExists(duck: DuckDb): Promise<boolean> {
  const rows = await duck.rows(`SELECT 1 FROM duckdb_tables() WHERE table_name = ${sqlString(LOADED)}`)
  return rows.length > 0
}
