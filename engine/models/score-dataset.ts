/**
 * Streams a dataset version through an ONNX model with ONNX Runtime: DuckDB hands over the feature
 * columns one chunk (~2,048 rows) at a time, chunks are packed into FP32 batches of `batchRows` rows, and
 * each batch goes through `session.run`, so memory holds one batch of inputs whatever the dataset's size.
 * Every row carries its place in the version (`__cairn_order`: file index << 40 + row in file), the
 * order `cairn datasets export` reads, so that a caller can put predictions back beside their rows.
 *
 * Loaded only by the model operators when a task runs: ONNX Runtime and DuckDB stay out of `cairn
 * validate` and the scheduler.
 */
import type { InferenceSession } from 'onnxruntime-node'
import { parquetScan, sqlIdent, sqlString } from '../data/duckdb.ts'
import type { DuckDb } from '../data/duckdb.ts'
import { outputWidth } from './feeding.ts'

/** Rows per `session.run`. */
export const BATCH_ROWS = 8192
/** Name of the row-order column of `sourceSql`. */
export const ORDER_COLUMN = '__cairn_order'

/** A failure the same model and data would hit again: never retried. */
export class ScoringProblem extends Error {
  readonly kind: 'data_invalid' | 'invalid_params'
  constructor(kind: 'data_invalid' | 'invalid_params', message: string) {
    super(message)
    this.kind = kind
  }
}

export interface OnnxModel {
  session: InferenceSession
  inputName: string
  outputName: string
  close(): Promise<void>
}

/**
 * Loads the model and checks that its first input takes FP32 [rows, features.length]. One intra-op
 * thread: a worker runs several tasks at once, and batches of thousands of rows keep one thread busy.
 */
export async function openOnnxModel(file: string, featureCount: number): Promise<OnnxModel> {
  const ort = await import('onnxruntime-node')
  let session: InferenceSession
  try {
    session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1 })
  } catch (error) {
    throw new ScoringProblem('data_invalid', `ONNX Runtime cannot load the model ${file}: ${(error as Error).message}`)
  }
  const fail = async (message: string): Promise<never> => {
    await session.release().catch(() => undefined)
    throw new ScoringProblem('data_invalid', message)
  }
  const input = session.inputMetadata[0]
  const outputName = session.outputNames[0]
  if (!input || outputName === undefined) return fail('the model has no input or no output')
  if (input.isTensor) {
    if (input.type !== 'float32') return fail(`the model's first input ${JSON.stringify(input.name)} takes ${input.type}; cairn feeds FP32 [rows, features]`)
    if (input.shape.length !== 0 && input.shape.length !== 2) return fail(`the model's first input ${JSON.stringify(input.name)} has shape [${input.shape.join(', ')}]; cairn feeds [rows, features]`)
    const width = input.shape[1]
    if (typeof width === 'number' && width > 0 && width !== featureCount) {
      return fail(`the model's first input ${JSON.stringify(input.name)} takes ${width} features per row, and ${featureCount} were named`)
    }
  }
  return { session, inputName: input.name, outputName, close: () => session.release() }
}

/** `features`, `task` and `null_as` from the ONNX file's metadata_props (cairn's trainer writes them), when present. */
export async function readOnnxMetadata(file: string): Promise<{ features?: string[]; task?: string; nullAs?: number }> {
  const [{ readFile }, { default: onnxProto }] = await Promise.all([import('node:fs/promises'), import('onnx-proto')])
  try {
    const model = onnxProto.onnx.ModelProto.decode(await readFile(file))
    const props = new Map((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']))
    const out: { features?: string[]; task?: string; nullAs?: number } = {}
    const features: unknown = props.has('features') ? JSON.parse(props.get('features')!) : undefined
    if (Array.isArray(features) && features.every((f) => typeof f === 'string')) out.features = features
    if (props.has('task')) out.task = props.get('task')!
    const nullAs = props.has('null_as') ? Number(props.get('null_as')) : NaN
    if (Number.isFinite(nullAs)) out.nullAs = nullAs
    return out
  } catch {
    // Not readable as ONNX here: ONNX Runtime says why when it loads the file.
    return {}
  }
}

/** The version's rows with their order key, as a SELECT over its files in the order they are read. */
export function sourceSql(files: readonly string[]): string {
  if (files.length === 0) throw new Error('a dataset version has at least one file')
  return files
    .map((file, i) => `SELECT * EXCLUDE (file_row_number), (${i}::BIGINT << 40) + file_row_number AS ${ORDER_COLUMN} FROM read_parquet(${sqlString(file)}, file_row_number = true)`)
    .join(' UNION ALL ')
}

/**
 * A message naming the columns with null or non-finite values (and how many), or undefined when there are
 * none. Nulls in `nullable` columns are allowed: the model was trained reading them as a value (`null_as`).
 */
export async function findBadValues(duck: DuckDb, files: readonly string[], columns: readonly string[], nullable: ReadonlySet<string> = new Set()): Promise<string | undefined> {
  if (columns.length === 0) return undefined
  const counts = columns.map((c, i) => `count(*) FILTER (WHERE ${sqlIdent(c)} IS NULL)::VARCHAR AS n${i}, count(*) FILTER (WHERE NOT isfinite(CAST(${sqlIdent(c)} AS DOUBLE)))::VARCHAR AS f${i}`)
  const [row] = await duck.rows<Record<string, string>>(`SELECT ${counts.join(', ')} FROM ${parquetScan(files)}`)
  const problems: string[] = []
  columns.forEach((c, i) => {
    const nulls = Number(row![`n${i}`])
    const nonFinite = Number(row![`f${i}`])
    if (nulls > 0 && !nullable.has(c)) problems.push(`${JSON.stringify(c)} has ${nulls} null${nulls === 1 ? '' : 's'}`)
    if (nonFinite > 0) problems.push(`${JSON.stringify(c)} has ${nonFinite} NaN or infinite value${nonFinite === 1 ? '' : 's'}`)
  })
  return problems.length === 0 ? undefined : `${problems.join(', ')}; a model gets no value for them (cairn does not impute): fill or filter those rows first`
}

export interface ScoredBatch {
  rows: number
  /** Each row's `__cairn_order`. */
  order: BigInt64Array
  /** The label column as numbers (booleans 1/0), when asked for. */
  labels?: Float64Array
  /** Output 0, row-major, `width` values per row. */
  outputs: Float32Array | Float64Array
  width: number
}

export interface ScoreOptions {
  files: readonly string[]
  features: readonly string[]
  label?: string
  batchRows?: number
  signal: AbortSignal
  /** A null feature value is fed as this (the model's training read nulls so); without it nulls were refused before. */
  nullAs?: number
}

/** Runs the model over every row, one batch at a time, in the version's row order within each file. */
export async function* scoreBatches(duck: DuckDb, model: OnnxModel, options: ScoreOptions): AsyncGenerator<ScoredBatch> {
  const { Tensor } = await import('onnxruntime-node')
  const f = options.features.length
  const batchRows = options.batchRows ?? BATCH_ROWS
  const feature = (c: string): string => (options.nullAs === undefined ? `CAST(${sqlIdent(c)} AS FLOAT)` : `coalesce(CAST(${sqlIdent(c)} AS FLOAT), ${Number(options.nullAs)}::FLOAT)`)
  const select = [ORDER_COLUMN, ...options.features.map(feature), ...(options.label !== undefined ? [`CAST(${sqlIdent(options.label)} AS DOUBLE)`] : [])]
  const result = await duck.connection.stream(`SELECT ${select.join(', ')} FROM (${sourceSql(options.files)})`)
  let input = new Float32Array(batchRows * f)
  let order = new BigInt64Array(batchRows)
  let labels = options.label !== undefined ? new Float64Array(batchRows) : undefined
  let filled = 0
  let width: number | undefined

  const run = async (): Promise<ScoredBatch> => {
    const rows = filled
    const tensor = new Tensor('float32', input.subarray(0, rows * f), [rows, f])
    let out
    try {
      out = (await model.session.run({ [model.inputName]: tensor }, [model.outputName]))[model.outputName]!
    } catch (error) {
      throw new ScoringProblem('data_invalid', `ONNX Runtime failed on a batch of ${rows} rows: ${(error as Error).message}`)
    }
    if (out.type !== 'float32' && out.type !== 'float64') throw new ScoringProblem('data_invalid', `the model's first output is ${out.type}; cairn reads float32 probabilities or values`)
    const shape = outputWidth(out.dims.map(Number), rows)
    if (!shape.ok) throw new ScoringProblem('data_invalid', shape.message)
    if (width !== undefined && shape.width !== width) throw new ScoringProblem('data_invalid', `the model's first output changed width between batches (${width}, then ${shape.width})`)
    width = shape.width
    const data = out.data as Float32Array | Float64Array
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i]!)) throw new ScoringProblem('data_invalid', `the model's output is ${data[i]} for a row of this batch of ${rows} (its inputs are all finite): the model is broken or overflows`)
    }
    const batch: ScoredBatch = { rows, order: order.subarray(0, rows), outputs: data, width, ...(labels ? { labels: labels.subarray(0, rows) } : {}) }
    // The batch keeps its arrays: the next one gets fresh ones.
    input = new Float32Array(batchRows * f)
    order = new BigInt64Array(batchRows)
    labels = labels ? new Float64Array(batchRows) : undefined
    filled = 0
    return batch
  }

  for (;;) {
    if (options.signal.aborted) return
    const chunk = await result.fetchChunk()
    if (!chunk || chunk.rowCount === 0) break
    const columns = Array.from({ length: chunk.columnCount }, (_, c) => chunk.getColumnVector(c))
    for (let i = 0; i < chunk.rowCount; i++) {
      order[filled] = columns[0]!.getItem(i) as bigint
      for (let c = 0; c < f; c++) input[filled * f + c] = columns[c + 1]!.getItem(i) as number
      if (labels) labels[filled] = columns[f + 1]!.getItem(i) as number
      filled++
      if (filled === batchRows) yield await run()
    }
  }
  if (filled > 0 && !options.signal.aborted) yield await run()
}

/** A growing Float64Array (amortized doubling) for predictions and labels of a whole dataset. */
export class Growable {
  private data = new Float64Array(1024)
  length = 0
  push(values: ArrayLike<number>): void {
    if (this.length + values.length > this.data.length) {
      let size = this.data.length
      while (size < this.length + values.length) size *= 2
      const bigger = new Float64Array(size)
      bigger.set(this.data.subarray(0, this.length))
      this.data = bigger
    }
    this.data.set(values, this.length)
    this.length += values.length
  }
  pushOne(value: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2)
      bigger.set(this.data)
      this.data = bigger
    }
    this.data[this.length++] = value
  }
  view(): Float64Array {
    return this.data.subarray(0, this.length)
  }
}
