/**
 * The offline store's computations, in DuckDB over Parquet (Feast's OfflineStore: the input of
 * materialization and the point-in-time join). Pure SQL builders plus the statements that run them;
 * where the rows are recorded is feature-store.ts's business.
 *
 * Materialization (SPEC section 7), for an interval end E: every entity with at least one source
 * row whose timestamp is before E gets one row, feature_timestamp = E, each feature aggregated over
 * the rows with timestamp in [E - window, E) (no window: every row before E). Over no rows, count and
 * count_distinct are 0 and the others null. `last`/`first` take the value of the newest/oldest row by
 * timestamp, even when that value is null; rows with the same timestamp are ordered by their place
 * in the source version (file name order, then row order), the later row being the newer. Source
 * rows whose timestamp or any entity column is null belong to no entity and are ignored. `stddev` is
 * the sample standard deviation (null for fewer than two values); `count` with a column counts its
 * non-null values, without one the rows.
 */
import type { DatasetColumn } from './column-types.ts'
import type { DuckDb } from './duckdb.ts'
import { sqlIdent, sqlString } from './duckdb.ts'
import { FEATURE_TIMESTAMP } from './feature-definition.ts'
import type { FeatureSpec, FeatureViewDefinition } from './feature-definition.ts'

/** A timestamp literal DuckDB reads exactly (microseconds, UTC). */
export function timestampLiteral(at: Date): string {
  return `${sqlString(at.toISOString())}::TIMESTAMPTZ`
}

/**
 * One scan over a version's files that adds `__order`: a number that grows with each row's place in
 * the version (file index, then row in the file), for deterministic tie-breaks and label order.
 * `columns` limits what is read (Parquet is columnar: unread columns cost nothing).
 */
export function orderedScan(files: readonly string[], columns: readonly string[] | '*'): string {
  const select = columns === '*' ? '*' : columns.map(sqlIdent).join(', ')
  return files
    .map((file, i) => `SELECT ${select}, (${i}::BIGINT << 40) + file_row_number AS __order FROM read_parquet(${sqlString(file)}, file_row_number = true)`)
    .join(' UNION ALL BY NAME ')
}

/** The DuckDB type a feature gets in the offline rows (stable Parquet types; no HUGEINT). */
function featureExpression(f: FeatureSpec, columnTypes: ReadonlyMap<string, string>, windowStart: string | undefined): string {
  const filter = windowStart === undefined ? '' : ` FILTER (WHERE __ts >= ${windowStart})`
  const col = f.column === null ? undefined : sqlIdent(f.column)
  const type = f.column === null ? undefined : columnTypes.get(f.column)
  switch (f.agg) {
    case 'count':
      return `coalesce(count(${col ?? '*'})${filter}, 0)::BIGINT`
    case 'count_distinct':
      return `coalesce(count(DISTINCT ${col})${filter}, 0)::BIGINT`
    case 'sum':
      return type === 'integer' ? `sum(${col})${filter}::BIGINT` : `sum(${col}::DOUBLE)${filter}`
    case 'avg':
      return `avg(${col}::DOUBLE)${filter}`
    case 'stddev':
      return `stddev_samp(${col}::DOUBLE)${filter}`
    case 'min':
      return `min(${col})${filter}`
    case 'max':
      return `max(${col})${filter}`
    case 'last':
      return `arg_max_null(${col}, __key)${filter}`
    case 'first':
      return `arg_min_null(${col}, __key)${filter}`
  }
}

/**
 * The order of rows for last/first: timestamp, then place in the version, as one HUGEINT (compared
 * about twice as fast as a struct of the two): epoch microseconds * 2^53 + __order (< 2^52).
 */
const KEY = `epoch_us(__ts)::HUGEINT * 9007199254740992 + __order`

/**
 * The aggregation of one interval as one SELECT over the source version's files. `columns`: the
 * source version's schema (checked by the caller to hold every column the view names).
 */
export function materializeSelect(d: FeatureViewDefinition, files: readonly string[], columns: readonly DatasetColumn[], end: Date): string {
  const types = new Map(columns.map((c) => [c.name, c.type]))
  const needsOrder = d.features.some((f) => f.agg === 'last' || f.agg === 'first')
  const read = new Set<string>([...d.entity, d.timestamp])
  for (const f of d.features) if (f.column !== null) read.add(f.column)
  const scan = needsOrder ? orderedScan(files, [...read]) : `SELECT ${[...read].map(sqlIdent).join(', ')} FROM read_parquet([${files.map(sqlString).join(', ')}])`
  const endLiteral = timestampLiteral(end)
  const entity = d.entity.map(sqlIdent)
  const features = d.features.map((f) => {
    const start = f.window_ms === null ? undefined : timestampLiteral(new Date(end.getTime() - f.window_ms))
    return `${featureExpression(f, types, start)} AS ${sqlIdent(f.name)}`
  })
  return `SELECT ${entity.join(', ')}, ${endLiteral} AS ${FEATURE_TIMESTAMP}, ${features.join(', ')}
    FROM (SELECT *, ${needsOrder ? `${KEY} AS __key` : '0 AS __key'} FROM (SELECT *, ${sqlIdent(d.timestamp)}::TIMESTAMPTZ AS __ts FROM (${scan}))) s
   WHERE __ts < ${endLiteral}${entity.map((e) => ` AND ${e} IS NOT NULL`).join('')}
   GROUP BY ${entity.join(', ')}`
}

/** Writes the rows of a SELECT to one Parquet file; returns the row count. */
export async function copyToParquet(duck: DuckDb, select: string, file: string): Promise<number> {
  const [row] = await duck.values(`COPY (${select}) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION zstd)`)
  return Number(row?.[0] ?? 0)
}

/** What the columns a view's definition reads lack in a source schema (messages), empty when it has them all. */
export function missingSourceColumns(d: FeatureViewDefinition, columns: readonly DatasetColumn[]): string[] {
  const have = new Set(columns.map((c) => c.name))
  const problems: string[] = []
  for (const e of d.entity) if (!have.has(e)) problems.push(`entity column ${e}`)
  if (!have.has(d.timestamp)) problems.push(`timestamp column ${d.timestamp}`)
  for (const f of d.features) if (f.column !== null && !have.has(f.column)) problems.push(`column ${f.column} (feature ${f.name})`)
  return problems
}

/** A view's part of a training set: its offline rows (current definition) and the features taken. */
export interface JoinedView {
  name: string
  definition: FeatureViewDefinition
  /** Parquet files of every materialized interval of the definition (may be empty). */
  files: string[]
  /** DuckDB types of the view's entity columns in the offline rows (from any file); undefined when there are none. */
  entityTypes: Map<string, string> | undefined
  /** Features to add, as `view__feature` columns, in this order. */
  features: string[]
}

/**
 * The point-in-time join of SPEC section 7: for each label row (entity, t), each feature takes the
 * value of the view's newest offline row with feature_timestamp <= t, null when there is none or when
 * that row's feature_timestamp is before t - ttl. One ASOF LEFT JOIN per view, so every label row
 * appears exactly once, in its order (`__i`). Label entity values are cast to the view's entity
 * types (a value that does not cast matches nothing); a null entity or timestamp matches nothing.
 * With `window`, only the label rows whose timestamp lies in [start, end) (a null timestamp in none).
 */
export function trainingSetSelect(labels: { files: readonly string[]; columns: readonly DatasetColumn[]; timestamp: string; window?: { start: Date; end: Date } }, views: readonly JoinedView[]): string {
  const labelColumns = labels.columns.map((c) => c.name)
  const keyColumns: string[] = []
  views.forEach((v, i) => {
    v.definition.entity.forEach((e, j) => {
      const target = v.entityTypes?.get(e)
      keyColumns.push(target === undefined ? `NULL AS __k${i}_${j}` : `TRY_CAST(${sqlIdent(e)} AS ${target}) AS __k${i}_${j}`)
    })
  })
  const t = `${sqlIdent(labels.timestamp)}::TIMESTAMPTZ`
  const inWindow = labels.window ? ` WHERE ${t} >= ${timestampLiteral(labels.window.start)} AND ${t} < ${timestampLiteral(labels.window.end)}` : ''
  const labelScan = `SELECT *, ${t} AS __t${keyColumns.map((k) => `, ${k}`).join('')} FROM (${orderedScan(labels.files, '*')})${inWindow}`
  const ctes = [`__labels AS (${labelScan})`]
  const joins: string[] = []
  const outputs: string[] = labelColumns.map((c) => `l.${sqlIdent(c)}`)
  views.forEach((v, i) => {
    const alias = `f${i}`
    if (v.files.length === 0 || v.entityTypes === undefined) {
      for (const f of v.features) outputs.push(`NULL AS ${sqlIdent(`${v.name}__${f}`)}`)
      return
    }
    const entity = v.definition.entity
    const select = [...entity.map((e, j) => `${sqlIdent(e)} AS __e${j}`), `${FEATURE_TIMESTAMP} AS __ft`, ...v.features.map((f) => sqlIdent(f))]
    ctes.push(`${alias} AS (SELECT ${select.join(', ')} FROM read_parquet([${v.files.map(sqlString).join(', ')}], union_by_name = true))`)
    const on = entity.map((_, j) => `l.__k${i}_${j} = ${alias}.__e${j}`)
    joins.push(`ASOF LEFT JOIN ${alias} ON ${on.join(' AND ')} AND l.__t >= ${alias}.__ft`)
    const fresh = v.definition.ttl_ms === null ? undefined : `epoch_us(${alias}.__ft) >= epoch_us(l.__t) - ${BigInt(v.definition.ttl_ms) * 1000n}`
    for (const f of v.features) {
      const value = `${alias}.${sqlIdent(f)}`
      outputs.push(`${fresh === undefined ? value : `CASE WHEN ${fresh} THEN ${value} END`} AS ${sqlIdent(`${v.name}__${f}`)}`)
    }
  })
  return `WITH ${ctes.join(',\n')}
  SELECT ${outputs.join(', ')}, row_number() OVER (ORDER BY l.__order) - 1 AS __i
    FROM __labels l ${joins.join(' ')}`
}

/**
 * The holdout rule: row i (0-based position among the label rows) is held out when
 * fmix32((i + seed * 0x9E3779B9) mod 2^32) / 2^32 < share, where fmix32 is MurmurHash3's 32-bit
 * finalizer. Depends on the position and the seed only, so one seed gives one split everywhere.
 */
export function holdoutMacros(seed: number): string[] {
  const offset = (BigInt(seed) * 0x9e3779b9n) % 0x100000000n
  const start = offset < 0n ? offset + 0x100000000n : offset
  return [
    `CREATE OR REPLACE TEMP MACRO __xs(h, n) AS xor(h, h >> n)`,
    `CREATE OR REPLACE TEMP MACRO __mul(h, m) AS (h * m) % 4294967296`,
    `CREATE OR REPLACE TEMP MACRO __fmix(h) AS __xs(__mul(__xs(__mul(__xs(h, 16), 2246822507), 13), 3266489909), 16)`,
    `CREATE OR REPLACE TEMP MACRO __held(i, share) AS __fmix((i::HUGEINT + ${start}) % 4294967296) < share * 4294967296`,
  ]
}
