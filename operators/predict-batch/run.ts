/**
 * `predict.batch`'s run (SPEC sections 4 and 7): streams a dataset version through a registered model
 * version in batches (engine/models/score-dataset.ts) into a new version of `output`: the input rows in
 * their order, every column as it was, plus `prediction` (binary: the positive-class probability;
 * regression: the value; multiclass: the class index) and `model_version`.
 *
 * Predictions go into a DuckDB table beside their rows' order keys as batches come back; one COPY then
 * joins them to the rows in order and writes the Parquet file of the staged version, published in one
 * step (lineage: the input dataset version and the model version). A failed or cancelled attempt
 * discards the staged folder: nothing is published.
 */
import { join } from 'node:path'
import type { DuckDBConnection } from '@duckdb/node-api'
import type { DatasetColumn } from '../../engine/data/column-types.ts'
import { chooseFeatures, checkColumns, nullPolicy, scoreKind } from '../../engine/models/feeding.ts'
import type { ScoreKind } from '../../engine/models/metrics.ts'
import { abortedResult, noDataServicesResult } from '../define.ts'
import type { OperatorContext, OperatorResult } from '../define.ts'

export type PredictParams = {
  model_name: string
  version?: number | string
  dataset: string
  features?: string[]
  output: string
}

/** Columns predict.batch adds; an input that already has one of them is refused rather than overwritten. */
const ADDED = ['prediction', 'model_version'] as const
const PREDICTIONS_TABLE = '__cairn_predictions'

export async function runPredictBatch(params: PredictParams, ctx: OperatorContext): Promise<OperatorResult> {
  const data = ctx.data
  if (!data) return noDataServicesResult()
  if (ctx.signal.aborted) return abortedResult(ctx.signal)
  const invalid = (message: string): OperatorResult => ({ ok: false, kind: 'invalid_params', retryable: false, message })
  const dataInvalid = (message: string): OperatorResult => ({ ok: false, kind: 'data_invalid', retryable: false, message })

  const wanted = String(params.version ?? 'production')
  if (!/^(?:[1-9][0-9]{0,9}|production|canary|candidate|archived)$/.test(wanted)) return invalid(`version ${JSON.stringify(wanted)} is neither a version number nor a stage (production, canary, candidate, archived)`)
  const resolved = await data.models.resolve(`models:/${params.model_name}/${wanted}`)
  if (!resolved.ok) return invalid(resolved.message)
  const model = (await data.models.get(params.model_name, resolved.version))!
  const input = await data.datasets.resolve(params.dataset)
  if (!input) return invalid(`dataset ${JSON.stringify(params.dataset)} has no version`)
  const where = `${input.dataset}@${input.version}`

  const { readOnnxMetadata, findBadValues, openOnnxModel, scoreBatches, sourceSql, ScoringProblem, ORDER_COLUMN } = await import('../../engine/models/score-dataset.ts')
  const recordedNullAs = nullPolicy(model.metrics).nullAs
  const fromFile = (params.features?.length || model.features.length) && model.taskKind && recordedNullAs !== undefined ? {} : await readOnnxMetadata(model.path)
  // A model cairn trained read null features as `null_as`; scoring it does the same, others refuse nulls.
  const nullAs = recordedNullAs ?? fromFile.nullAs
  const chosen = chooseFeatures(params.features, model.features, fromFile.features)
  if (!chosen.ok) return invalid(chosen.message)
  const columns = checkColumns(where, input.columns, chosen.features)
  if (columns !== undefined) return (chosen.source === 'params' ? invalid : dataInvalid)(`${columns} (features from the ${chosen.source})`)
  const clash = ADDED.filter((name) => input.columns.some((c) => c.name === name))
  if (clash.length > 0) return dataInvalid(`dataset ${where} already has a column ${clash.map((c) => JSON.stringify(c)).join(' and ')}, which predict.batch adds`)
  const recordedTask = model.taskKind ?? fromFile.task

  const { openDuckDb, sqlString } = await import('../../engine/data/duckdb.ts')
  const staged = await data.datasets.stage(params.output)
  const duck = await openDuckDb(data.duckdb)
  // Predictions are written through a second connection: a statement on the streaming one would end its stream.
  let writer: DuckDBConnection | undefined
  let published = false
  try {
    const bad = await findBadValues(duck, input.files, chosen.features, nullAs === undefined ? undefined : new Set(chosen.features))
    if (bad !== undefined) return dataInvalid(`dataset ${where}: ${bad}`)
    const onnx = await openOnnxModel(model.path, chosen.features.length)
    let kind: ScoreKind | undefined
    let appender: Awaited<ReturnType<typeof duck.connection.createAppender>> | undefined
    let rows = 0
    // Whether the rows came in scan order (their order keys strictly increasing).
    let inOrder = true
    let last = -1n
    const predictions = (writer = await duck.connect())
    const createTable = async (k: ScoreKind) => {
      await predictions.run(`CREATE TABLE ${PREDICTIONS_TABLE} (ord BIGINT, prediction ${k === 'multiclass' ? 'BIGINT' : 'DOUBLE'})`)
      return predictions.createAppender(PREDICTIONS_TABLE)
    }
    try {
      for await (const batch of scoreBatches(duck, onnx, { files: input.files, features: chosen.features, signal: ctx.signal, ...(nullAs === undefined ? {} : { nullAs }) })) {
        if (kind === undefined) {
          kind = scoreKind(batch.width, recordedTask)
          appender = await createTable(kind)
          ctx.log.info(`scoring ${where} with ${model.model} version ${model.version} (${kind}, output width ${batch.width})`, { features: chosen.features, features_from: chosen.source })
        }
        const out = batch.outputs
        const w = batch.width
        for (let i = 0; i < batch.rows; i++) {
          if (batch.order[i]! <= last) inOrder = false
          last = batch.order[i]!
          appender!.appendBigInt(batch.order[i]!)
          if (kind === 'multiclass') {
            let best = 0
            for (let c = 1; c < w; c++) if (out[i * w + c]! > out[i * w + best]!) best = c
            appender!.appendBigInt(BigInt(best))
          } else appender!.appendDouble(w === 1 ? out[i]! : out[i * w + 1]!)
          appender!.endRow()
        }
        rows += batch.rows
      }
    } finally {
      appender?.closeSync()
      await onnx.close().catch(() => undefined)
    }
    if (kind === undefined && !ctx.signal.aborted) {
      // No rows: the output's width was never seen; the recorded task decides the column's type.
      kind = recordedTask === 'multiclass' ? 'multiclass' : scoreKind(1, recordedTask)
      ;(await createTable(kind)).closeSync()
    }
    if (ctx.signal.aborted || kind === undefined) return abortedResult(ctx.signal)
    if (rows !== input.rows) return { ok: false, kind: 'infrastructure', retryable: false, message: `read ${rows} rows of ${where}, which has ${input.rows}; nothing was published` }
    const file = join(staged.dir, 'part-0.parquet')
    // When the stream returned the rows in scan order (DuckDB's preserve_insertion_order), the predictions
    // went in in that order and line up with the rows by position: no join by key, no sort (2.6 s of 4.5 s
    // for a million rows). Each row's order key is compared with its prediction's all the same: a mismatch
    // stops the COPY rather than misplace a score. Otherwise, a join on the order key, sorted.
    const columns = `s.* EXCLUDE (${ORDER_COLUMN}), ${inOrder ? `CASE WHEN s.${ORDER_COLUMN} = p.ord THEN p.prediction ELSE error('a prediction is out of step with its row') END AS prediction` : 'p.prediction'}, ${model.version}::BIGINT AS model_version`
    const joined = inOrder
      ? `FROM (${sourceSql(input.files)}) s POSITIONAL JOIN ${PREDICTIONS_TABLE} p`
      : `FROM (${sourceSql(input.files)}) s JOIN ${PREDICTIONS_TABLE} p ON s.${ORDER_COLUMN} = p.ord ORDER BY s.${ORDER_COLUMN}`
    await duck.run(`COPY (SELECT ${columns} ${joined}) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION zstd)`)
    if (ctx.signal.aborted) return abortedResult(ctx.signal)
    const declared: DatasetColumn[] = [...input.columns, { name: 'prediction', type: kind === 'multiclass' ? 'integer' : 'number' }, { name: 'model_version', type: 'integer' }]
    let result
    try {
      ;[result] = await data.datasets.publish([{
        staged,
        producedKind: 'predict.batch',
        inputs: [{ dataset: input.dataset, version: input.version }, { model: model.model, model_version: model.version }],
        declared,
        details: { model: { name: model.model, version: model.version, sha256: model.sha256 }, features: chosen.features, kind },
      }])
    } catch (error) {
      if (ctx.signal.aborted) return abortedResult(ctx.signal)
      return { ok: false, kind: 'infrastructure', retryable: true, message: `the predictions could not be published: ${(error as Error).message}` }
    }
    published = true
    const version = result!.version
    ctx.log.info(`${version.dataset}@${version.version}: ${version.rows} rows scored by ${model.model} version ${model.version}${result!.reused ? ' (already published by this task)' : ''}`)
    return { ok: true, outputs: { dataset: version.dataset, version: version.version, rows: version.rows } }
  } catch (error) {
    if (ctx.signal.aborted) return abortedResult(ctx.signal)
    if (error instanceof ScoringProblem) return { ok: false, kind: error.kind, retryable: false, message: error.message }
    throw error
  } finally {
    writer?.closeSync()
    duck.close()
    if (!published) await staged.discard().catch(() => undefined)
  }
}
