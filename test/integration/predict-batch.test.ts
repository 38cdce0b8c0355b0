/**
 * predict.batch under a real scheduler and worker, on ONNX models built in the test: 21,000 rows in
 * two Parquet files (several batches, chunk boundaries inside them) come out in their order with every
 * column as it was, plus `prediction` equal to the test's own forward pass and `model_version`; the
 * production version by default, a version number, a [N, 2] binary model (column 1), a multiclass model
 * (class index); lineage names the input dataset version and the model version. A missing feature
 * column, nulls and an output that would clash fail clearly, once, and publish nothing; neither does
 * an attempt cancelled after its first batch.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { startTestEngine } from '../helpers/engine.ts'
import { attemptRows, logLines, taskRows, waitForDags } from '../helpers/run-rows.ts'
import { forward, writeOnnxModel } from '../helpers/onnx-models.ts'
import type { LinearWeights } from '../helpers/onnx-models.ts'
import { publishRows } from '../helpers/model-data.ts'
import type { Row } from '../helpers/model-data.ts'
import { createDatasets } from '../../engine/data/datasets.ts'
import { openDuckDb, parquetScan } from '../../engine/data/duckdb.ts'
import { createModels } from '../../engine/models/registry.ts'
import { createDataServices } from '../../engine/data/data-services.ts'
import { taskAbort } from '../../operators/define.ts'
import type { OperatorContext } from '../../operators/define.ts'
import { runPredictBatch } from '../../operators/predict-batch/run.ts'

const V1: LinearWeights = { w: [[0.7], [-0.4]], b: [0.05] }
const V2: LinearWeights = { w: [[-0.3], [0.6]], b: [0.2] }
// Class 0 for a large a, 1 for a large b, 2 when both are small; logits never tie (a is an integer, b a multiple of 1/4).
const SOFTMAX: LinearWeights = { w: [[0.5, 0, 0], [0, 1, 0]], b: [0.01, 0, 1.52] }

test('predict.batch: rows in order with their columns, predictions of each model kind, lineage; bad features publish nothing', { timeout: 300_000 }, async (t) => {
  const engine = await startTestEngine(t, { dags: {}, inProcessWorkers: 1, scheduler: { loopMs: 200, syncEveryMs: 300 } })
  const datasets = createDatasets({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  const models = createModels({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })

  const rows: Row[] = []
  for (let i = 0; i < 21_000; i++) {
    rows.push({ id: 21_000 - i, name: `user ${i}`, a: (i * 7) % 11, b: ((i * 13) % 17) / 4, ts: new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString() })
  }
  const types = { id: 'BIGINT', name: 'VARCHAR', a: 'BIGINT', b: 'DOUBLE', ts: 'TIMESTAMPTZ' }
  const usersVersion = await publishRows(datasets, 'users', types, [rows.slice(0, 12_000), rows.slice(12_000)])
  await publishRows(datasets, 'users_nulls', types, [rows.slice(0, 100).map((r, i) => ({ ...r, a: i === 42 ? null : r.a! }))])
  await publishRows(datasets, 'already_scored', { a: 'BIGINT', b: 'DOUBLE', prediction: 'DOUBLE' }, [[{ a: 1, b: 2, prediction: 0.5 }]])

  const files = mkdtempSync(join(tmpdir(), 'cairn-predict-models-'))
  const register = async (name: string, kind: Parameters<typeof writeOnnxModel>[1], weights: LinearWeights, task: string) => {
    const file = writeOnnxModel(join(files, `${name}-${kind}-${weights.b.join('_')}.onnx`), kind, weights)
    return (await models.register({ name, file, features: ['a', 'b'], taskKind: task })).version
  }
  const v1 = await register('churn', 'logistic', V1, 'binary')
  const v2 = await register('churn', 'logistic2', V2, 'binary')
  const species = await register('species', 'softmax', SOFTMAX, 'multiclass')
  // A version as cairn's trainer records it: null features were read as 0 in training, so scoring does the same.
  const trainedFile = writeOnnxModel(join(files, 'trained-logistic.onnx'), 'logistic', V1)
  await models.register({ name: 'trained', file: trainedFile, features: ['a', 'b'], taskKind: 'binary', metrics: { null_as: 0 } })
  await models.setStage('churn', 1, 'production', { user: 'test' })

  const dag = (id: string, params: string, extra = '') => engine.writeDag(`${id}.yaml`, `dag: ${id}\ntasks:\n  score:\n    operator: predict.batch\n${extra}    params:\n${params.split('\n').map((l) => `      ${l}`).join('\n')}\n`)
  dag('score_prod', 'model_name: churn\ndataset: users\noutput: churn_scores')
  dag('score_v2', 'model_name: churn\nversion: 2\ndataset: users\noutput: churn_scores_v2')
  dag('score_species', 'model_name: species\nversion: candidate\ndataset: users\noutput: species_scores')
  dag('score_missing', 'model_name: churn\ndataset: users\nfeatures: [a, nope]\noutput: bad_scores', '    retries: 2\n')
  dag('score_nulls', 'model_name: churn\ndataset: users_nulls\noutput: null_scores', '    retries: 2\n')
  dag('score_clash', 'model_name: churn\ndataset: already_scored\noutput: clash_scores', '    retries: 2\n')
  dag('score_nulls_trained', 'model_name: trained\nversion: 1\ndataset: users_nulls\noutput: trained_scores')
  const ids = ['score_prod', 'score_v2', 'score_species', 'score_missing', 'score_nulls', 'score_clash', 'score_nulls_trained']
  await waitForDags(engine.db, ids)
  const runs = Object.fromEntries(await Promise.all(ids.map(async (id) => [id, await engine.trigger(id)] as const)))
  const states = Object.fromEntries(await Promise.all(ids.map(async (id) => [id, await engine.waitForRun(runs[id]!, 180_000)] as const)))
  const task = async (id: string) => (await taskRows(engine.db, runs[id]!)).get('score')!
  const log = async (id: string) => (await logLines(engine.db, runs[id]!, 'score')).map((l) => l.line).join('\n')

  const read = async (name: string) => {
    const version = (await datasets.get(name))!
    const duck = await openDuckDb({ threads: 1 })
    try {
      // No ORDER BY: the files' own order, as `cairn datasets export` reads them.
      const values = await duck.values(`SELECT id, name, a, b, epoch_ms(ts)::DOUBLE, prediction, model_version FROM ${parquetScan(version.files)}`)
      return { version, values }
    } finally {
      duck.close()
    }
  }
  const checkRows = (values: unknown[][], predict: (x: number[]) => number, tolerance: number, modelVersion: number) => {
    assert.equal(values.length, rows.length)
    let worst = 0
    for (const [i, v] of values.entries()) {
      const r = rows[i]!
      assert.deepEqual(v.slice(0, 5), [BigInt(r.id as number), r.name, BigInt(r.a as number), r.b, Date.parse(r.ts as string)], `row ${i}`)
      worst = Math.max(worst, Math.abs(Number(v[5]) - predict([r.a as number, r.b as number])))
      assert.equal(v[6], BigInt(modelVersion))
    }
    assert.ok(worst <= tolerance, `largest difference from the independent forward pass: ${worst}`)
  }

  // The production version by default: binary [N, 1], the probability.
  assert.equal(states.score_prod, 'success', await log('score_prod'))
  const prod = await task('score_prod')
  const scores = await read('churn_scores')
  assert.deepEqual(prod.outputs, { dataset: 'churn_scores', version: 1, rows: 21_000 })
  assert.deepEqual(scores.version.columns, [
    { name: 'id', type: 'integer' }, { name: 'name', type: 'string' }, { name: 'a', type: 'integer' }, { name: 'b', type: 'number' },
    { name: 'ts', type: 'timestamp' }, { name: 'prediction', type: 'number' }, { name: 'model_version', type: 'integer' },
  ])
  checkRows(scores.values, (x) => forward('logistic', x, V1)[0]!, 1e-6, v1.version)
  assert.deepEqual(scores.version.inputs, [{ dataset: 'users', version: usersVersion }, { model: 'churn', model_version: 1 }])
  assert.equal(scores.version.producedKind, 'predict.batch')
  assert.equal(scores.version.runId, runs.score_prod)
  assert.deepEqual(scores.version.details.model, { name: 'churn', version: 1, sha256: v1.sha256 })

  // The version that records null_as: 0 scores the row with a null as if it were 0; every other row as usual.
  assert.equal(states.score_nulls_trained, 'success', await log('score_nulls_trained'))
  {
    const version = (await datasets.get('trained_scores'))!
    const duck = await openDuckDb({ threads: 1 })
    try {
      const values = await duck.values(`SELECT a, b, prediction FROM ${parquetScan(version.files)}`)
      assert.equal(values.length, 100)
      for (const [i, v] of values.entries()) {
        const r = rows[i]!
        const expected = forward('logistic', [i === 42 ? 0 : (r.a as number), r.b as number], V1)[0]!
        assert.equal(v[0], i === 42 ? null : BigInt(r.a as number))
        assert.ok(Math.abs(Number(v[2]) - expected) <= 1e-6, `row ${i}: ${String(v[2])} vs ${expected}`)
      }
    } finally {
      duck.close()
    }
  }

  // A version number; [N, 2] output: column 1 is the positive class.
  assert.equal(states.score_v2, 'success', await log('score_v2'))
  checkRows((await read('churn_scores_v2')).values, (x) => forward('logistic2', x, V2)[1]!, 1e-6, v2.version)

  // Multiclass: the class index, an integer column.
  assert.equal(states.score_species, 'success', await log('score_species'))
  const classes = await read('species_scores')
  assert.equal(classes.version.columns.find((c) => c.name === 'prediction')!.type, 'integer')
  const argmax = (p: number[]) => p.indexOf(Math.max(...p))
  checkRows(classes.values, (x) => argmax(forward('softmax', x, SOFTMAX)), 0, species.version)
  assert.deepEqual(new Set(classes.values.map((v) => v[5])).size, 3, 'all three classes predicted somewhere')

  // Failures: once, a clear message, nothing published and no files left behind.
  const failures: [string, string, string, RegExp][] = [
    ['score_missing', 'bad_scores', 'invalid_params', /dataset users@1 has no column "nope" \(its columns: id, name, a, b, ts\) \(features from the params\)/],
    ['score_nulls', 'null_scores', 'data_invalid', /dataset users_nulls@1: "a" has 1 null; a model gets no value for them/],
    ['score_clash', 'clash_scores', 'data_invalid', /dataset already_scored@1 already has a column "prediction", which predict.batch adds/],
  ]
  for (const [id, output, kind, message] of failures) {
    assert.equal(states[id], 'failed', id)
    const row = await task(id)
    assert.equal(row.failure_kind, kind, id)
    assert.match(row.message!, message)
    assert.equal((await attemptRows(engine.db, runs[id]!, 'score')).length, 1, `${id} is not retried`)
    assert.equal(await datasets.get(output), undefined, `${id} published nothing`)
    const folder = join(engine.data.dir, output)
    assert.deepEqual(existsSync(folder) ? readdirSync(folder) : [], [], `${id} left no staged files`)
  }

  // Cancelled after the first batch (the operator logs once it has the first batch's output): the
  // rest is not scored, the staged folder is removed, nothing is published.
  const controller = new AbortController()
  const logged: string[] = []
  const ctx: OperatorContext = {
    dagId: 'adhoc', runId: 'no-run', taskId: 'score', attempt: 1,
    interval: { start: new Date(), end: new Date(), logicalDate: new Date() },
    data: createDataServices(engine.db, engine.data, { dagId: 'adhoc', runId: 'no-run', taskId: 'score', attempt: 1, claimId: '00000000-0000-0000-0000-000000000000' }, {}),
    signal: controller.signal, env: {}, workerEnv: {}, workdir: engine.dir,
    log: {
      info: (message) => {
        logged.push(message)
        if (message.startsWith('scoring ')) controller.abort(taskAbort('cancelled', 'cancelled by the test'))
      },
      warn: (message) => logged.push(message),
      error: (message) => logged.push(message),
    },
    output: () => undefined,
  }
  const cancelled = await runPredictBatch({ model_name: 'churn', dataset: 'users', output: 'cancelled_scores' }, ctx)
  assert.deepEqual(cancelled, { ok: false, kind: 'cancelled', retryable: false, message: 'cancelled by the test' }, logged.join('\n'))
  assert.equal(await datasets.get('cancelled_scores'), undefined)
  assert.deepEqual(readdirSync(join(engine.data.dir, 'cancelled_scores')), [])
})
