/**
 * evaluate.gate and predict.batch on a big dataset (issue 12), beside the bare model in the same run:
 *   bare          the same rows as one FP32 tensor per 8,192 rows straight into `session.run` (no DuckDB,
 *                 no metrics, no writing): what scoring alone costs
 *   gate          evaluate.gate: stream from Parquet, score, auc + accuracy + f1 + log_loss
 *   predict       predict.batch: stream, score, write rows + predictions to Parquet, publish
 * on N rows x 3 features with a logistic regression built from known weights. Medians of REPEAT runs.
 * Usage: node bench/models.ts [--rows N] [--repeat N]. Prints figures; never pass/fail.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import ort from 'onnxruntime-node'
import { silentLogger } from '../engine/log.ts'
import { createDatasets } from '../engine/data/datasets.ts'
import type { DataServices } from '../engine/data/data-services.ts'
import { openDuckDb, sqlString } from '../engine/data/duckdb.ts'
import { createModels } from '../engine/models/registry.ts'
import { createDb } from '../engine/store/db.ts'
import { startEmbeddedPostgres } from '../engine/store/embedded.ts'
import { migrate } from '../engine/store/migrate.ts'
import type { OperatorContext } from '../operators/define.ts'
import { runEvaluateGate } from '../operators/evaluate-gate/run.ts'
import { runPredictBatch } from '../operators/predict-batch/run.ts'
import { writeOnnxModel } from '../test/helpers/onnx-models.ts'

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, repeat: { type: 'string', default: '3' } } })
const ROWS = Number(values.rows)
const REPEAT = Number(values.repeat)
const BATCH = 8192
const log = silentLogger()
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-models-'))
const pg = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), log, ephemeral: true })
const db = createDb(pg.url, { log, max: 4 })
try {
  await migrate(db, log)
  const producer = { kind: 'actor' as const, actor: 'bench' }
  const datasets = createDatasets({ db, dir: join(dir, 'datasets'), producer })
  const models = createModels({ db, dir: join(dir, 'datasets'), producer })
  const staged = await datasets.stage('big')
  const duck = await openDuckDb()
  await duck.run(`COPY (SELECT i AS id, sin(i) AS a, cos(i * 0.3) AS b, (i % 7)::DOUBLE AS c, (sin(i) + cos(i * 0.3) > 0.2) AS y FROM range(${ROWS}) t(i)) TO ${sqlString(join(staged.dir, 'part-0.parquet'))} (FORMAT parquet)`)
  const [columns] = await duck.values(`SELECT list(a)::FLOAT[], list(b)::FLOAT[], list(c)::FLOAT[] FROM read_parquet(${sqlString(join(staged.dir, 'part-0.parquet'))})`)
  duck.close()
  await datasets.publish([{ staged, producedKind: 'import' }])
  const file = writeOnnxModel(join(dir, 'model.onnx'), 'logistic', { w: [[0.5], [-0.3], [0.1]], b: [0.05] })
  await models.register({ name: 'bench', file, features: ['a', 'b', 'c'], taskKind: 'binary' })
  await models.setStage('bench', 1, 'production', { user: 'bench' })

  // The bare model: the rows already in memory as FP32, batch by batch through session.run.
  const [a, b, c] = (columns as number[][][]).map((col) => Float32Array.from(col.flat()))
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1 })
  const bare = async () => {
    for (let start = 0; start < ROWS; start += BATCH) {
      const n = Math.min(BATCH, ROWS - start)
      const x = new Float32Array(n * 3)
      for (let i = 0; i < n; i++) {
        x[i * 3] = a![start + i]!
        x[i * 3 + 1] = b![start + i]!
        x[i * 3 + 2] = c![start + i]!
      }
      await session.run({ x: new ort.Tensor('float32', x, [n, 3]) })
    }
  }
  const ctx: OperatorContext = {
    dagId: 'bench', runId: 'bench', taskId: 'score', attempt: 1, interval: { start: new Date(), end: new Date(), logicalDate: new Date() },
    data: { datasets, models, duckdb: {}, dagsFolder: dir } as unknown as DataServices,
    signal: new AbortController().signal, env: {}, workerEnv: {}, workdir: dir,
    log: { info: () => {}, warn: () => {}, error: () => {} }, output: () => {},
  }
  const times: Record<string, number[]> = { bare: [], gate: [], predict: [] }
  for (let r = 0; r < REPEAT; r++) {
    let started = performance.now()
    await bare()
    times.bare!.push(performance.now() - started)
    started = performance.now()
    const gate = await runEvaluateGate({ model: 'models:/bench/1', dataset: 'big', label: 'y', metrics: ['auc', 'accuracy', 'f1', 'log_loss'], thresholds: {} }, ctx)
    times.gate!.push(performance.now() - started)
    started = performance.now()
    const predict = await runPredictBatch({ model_name: 'bench', dataset: 'big', output: 'scores' }, ctx)
    times.predict!.push(performance.now() - started)
    if (!gate.ok || !predict.ok) throw new Error(`a run failed: ${JSON.stringify([gate, predict])}`)
  }
  await session.release()
  for (const [name, ms] of Object.entries(times)) {
    const m = median(ms)
    console.log(`${name.padEnd(8)} ${ROWS} rows: median ${(m / 1000).toFixed(2)} s (${Math.round((ROWS / m) * 1000).toLocaleString('en-US')} rows/s), runs ${ms.map((x) => (x / 1000).toFixed(2)).join(', ')} s`)
  }
  console.log(`rss ${Math.round(process.memoryUsage().rss / 1e6)} MB`)
} finally {
  await db.close()
  await pg.stop()
  rmSync(dir, { recursive: true, force: true })
}
