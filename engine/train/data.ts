/**
 * The trainer's data: a dataset version's Parquet files read with DuckDB into a row-major Float32
 * feature matrix and a label vector, a seeded train/validation split, and the standardization
 * statistics of the training split (baked into the exported ONNX graph, so the model takes raw values).
 *
 * Features are the given columns, in that order, or every numeric/boolean column except the label, in
 * the files' column order. A null feature value becomes 0 (before standardization). Rows whose label
 * is null are refused: a training set with unlabeled rows is a mistake upstream, not something to guess.
 */
import { openDuckDb, parquetScan, sqlIdent } from '../data/duckdb.ts'
import { prng } from '../seeded-random.ts'

export { prng }

export type Task = 'binary' | 'multiclass' | 'regression'

/** A problem with the inputs (exit code 2): bad columns, bad labels, no rows. */
export class TrainInputError extends Error {
  override name = 'TrainInputError'
}

export interface Table {
  /** Row-major, rows x features. */
  x: Float32Array
  /** Binary: 0/1; multiclass: class index; regression: the value. */
  y: Float32Array
  rows: number
  features: string[]
  /** Multiclass: the label values in class-index order (sorted); otherwise absent. */
  classes?: string[]
  /** Feature nulls replaced by 0, per feature. */
  nullCounts: Record<string, number>
}

const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL(\(\d+,\s*\d+\))?|BOOLEAN)$/

export async function readTable(files: readonly string[], label: string, task: Task, wanted?: readonly string[]): Promise<Table> {
  if (files.length === 0) throw new TrainInputError('no dataset files given')
  const db = await openDuckDb({ threads: 1 })
  try {
    const scan = parquetScan(files)
    let described: { column_name: string; column_type: string }[]
    try {
      described = await db.rows(`DESCRIBE SELECT * FROM ${scan}`)
    } catch (error) {
      throw new TrainInputError(`cannot read the dataset files: ${(error as Error).message}`)
    }
    const types = new Map(described.map((c) => [c.column_name, c.column_type]))
    if (!types.has(label)) throw new TrainInputError(`label column "${label}" is not in the dataset (columns: ${[...types.keys()].join(', ')})`)
    let features: string[]
    if (wanted && wanted.length > 0) {
      for (const name of wanted) {
        const type = types.get(name)
        if (type === undefined) throw new TrainInputError(`feature column "${name}" is not in the dataset`)
        if (name === label) throw new TrainInputError(`feature column "${name}" is the label`)
        if (!NUMERIC.test(type)) throw new TrainInputError(`feature column "${name}" has type ${type}; features must be numeric or boolean`)
      }
      if (new Set(wanted).size !== wanted.length) throw new TrainInputError('a feature column is listed twice')
      features = [...wanted]
    } else {
      features = described.filter((c) => c.column_name !== label && NUMERIC.test(c.column_type)).map((c) => c.column_name)
      if (features.length === 0) throw new TrainInputError('the dataset has no numeric or boolean column besides the label')
    }
    const labelType = types.get(label)!
    if (task !== 'multiclass' && !NUMERIC.test(labelType)) {
      throw new TrainInputError(`label column "${label}" has type ${labelType}; a ${task} label must be numeric or boolean`)
    }

    const nulls = await db.values(
      `SELECT count(*) FILTER (WHERE ${sqlIdent(label)} IS NULL)${features.map((f) => `, count(*) FILTER (WHERE ${sqlIdent(f)} IS NULL)`).join('')} FROM ${scan}`,
    )
    const labelNulls = Number(nulls[0]![0])
    if (labelNulls > 0) throw new TrainInputError(`label column "${label}" is null in ${labelNulls} rows`)
    const nullCounts: Record<string, number> = {}
    features.forEach((f, i) => {
      nullCounts[f] = Number(nulls[0]![i + 1])
    })

    const labelExpr = task === 'multiclass' ? `CAST(${sqlIdent(label)} AS VARCHAR)` : `CAST(${sqlIdent(label)} AS DOUBLE)`
    const select = features.map((f) => `COALESCE(CAST(${sqlIdent(f)} AS DOUBLE), 0)`).join(', ')
    const result = await db.connection.run(`SELECT ${labelExpr}, ${select} FROM ${scan}`)
    const columns = (await result.getColumnsJS()) as unknown[][]
    const rows = columns[0]!.length
    if (rows === 0) throw new TrainInputError('the dataset has no rows')
    const x = new Float32Array(rows * features.length)
    for (let j = 0; j < features.length; j++) {
      const column = columns[j + 1] as number[]
      for (let i = 0; i < rows; i++) x[i * features.length + j] = column[i]!
    }
    const y = new Float32Array(rows)
    let classes: string[] | undefined
    if (task === 'multiclass') {
      const raw = columns[0] as string[]
      const distinct = [...new Set(raw)]
      const allNumeric = distinct.every((v) => v.trim() !== '' && Number.isFinite(Number(v)))
      classes = allNumeric ? distinct.sort((a, b) => Number(a) - Number(b)) : distinct.sort()
      if (classes.length < 2) throw new TrainInputError(`label column "${label}" has ${classes.length} distinct value; multiclass needs at least 2`)
      const index = new Map(classes.map((c, i) => [c, i]))
      for (let i = 0; i < rows; i++) y[i] = index.get(raw[i]!)!
    } else {
      const raw = columns[0] as number[]
      for (let i = 0; i < rows; i++) {
        const v = raw[i]!
        if (task === 'binary' && v !== 0 && v !== 1) {
          throw new TrainInputError(`label column "${label}" holds ${v}; a binary label must be 0/1 or boolean`)
        }
        if (!Number.isFinite(v)) throw new TrainInputError(`label column "${label}" holds a non-finite value`)
        y[i] = v
      }
    }
    for (let k = 0; k < x.length; k++) {
      if (!Number.isFinite(x[k]!)) throw new TrainInputError(`feature column "${features[k % features.length]}" holds a non-finite value`)
    }
    return { x, y, rows, features, classes, nullCounts }
  } finally {
    db.close()
  }
}

/** Fisher-Yates permutation of 0..n-1 from a seeded stream. */
export function permutation(n: number, random: () => number): Uint32Array {
  const p = new Uint32Array(n)
  for (let i = 0; i < n; i++) p[i] = i
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = p[i]!
    p[i] = p[j]!
    p[j] = t
  }
  return p
}

export interface Split {
  train: Uint32Array
  validation: Uint32Array
}

/** A seeded split: a fixed fraction of rows (at least one when there are two or more) for validation. */
export function splitRows(rows: number, validationFraction: number, seed: number): Split {
  const order = permutation(rows, prng(seed ^ 0x5eed5eed))
  let nValidation = Math.round(rows * validationFraction)
  if (validationFraction > 0 && rows >= 2) nValidation = Math.min(Math.max(nValidation, 1), rows - 1)
  const validation = order.slice(0, nValidation).sort()
  const train = order.slice(nValidation).sort()
  return { train, validation }
}

export interface Standardization {
  mean: Float32Array
  std: Float32Array
}

/** Mean and population standard deviation per feature over the given rows (std 0 -> 1, so Div is safe). */
export function standardization(table: Table, rows: Uint32Array): Standardization {
  const f = table.features.length
  const sum = new Float64Array(f)
  const sq = new Float64Array(f)
  for (const r of rows) {
    for (let j = 0; j < f; j++) {
      const v = table.x[r * f + j]!
      sum[j]! += v
      sq[j]! += v * v
    }
  }
  const n = Math.max(rows.length, 1)
  const mean = new Float32Array(f)
  const std = new Float32Array(f)
  for (let j = 0; j < f; j++) {
    const m = sum[j]! / n
    const variance = Math.max(sq[j]! / n - m * m, 0)
    mean[j] = m
    const s = Math.sqrt(variance)
    std[j] = s > 1e-12 && Number.isFinite(s) ? s : 1
  }
  return { mean, std }
}

/** The standardized rows, gathered in the given order: (x - mean) / std in Float32, as the ONNX graph computes it. */
export function gather(table: Table, rows: Uint32Array | number[], stats: Standardization): { x: Float32Array; y: Float32Array } {
  const f = table.features.length
  const x = new Float32Array(rows.length * f)
  const y = new Float32Array(rows.length)
  const tmp = new Float32Array(1)
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!
    for (let j = 0; j < f; j++) {
      tmp[0] = table.x[r * f + j]! - stats.mean[j]!
      x[i * f + j] = tmp[0] / stats.std[j]!
    }
    y[i] = table.y[r]!
  }
  return { x, y }
}
