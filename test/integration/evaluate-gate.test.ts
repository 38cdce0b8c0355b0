/**
 * evaluate.gate under a real scheduler and worker, on ONNX models built in the test from known
 * weights (test/helpers/onnx-models.ts), registered through the registry service: the metrics equal
 * values computed here from the test's own forward pass (a pairwise AUC over 400 rows in 16 tied
 * groups); a gate that passes against the production baseline; a gate not met is attempted once
 * (retries set), keeps its outputs and writes the report table into the log; a candidate that does not
 * beat production fails with the baseline in its report; no production version passes with baseline
 * null; multiclass and regression models read from .onnx paths; nulls and missing columns are clear
 * errors that are not retried; compare_to without model_name compares with the production version of the
 * model a rendered models:/NAME/... reference names, and fails as invalid params (not retried) when the
 * model renders to a file; an attempt cancelled once the model is scored reports the cancel, not a
 * verdict.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { startTestEngine } from '../helpers/engine.ts'
import { attemptRows, logLines, taskRows, waitForDags } from '../helpers/run-rows.ts'
import { forward, writeOnnxModel } from '../helpers/onnx-models.ts'
import type { LinearWeights } from '../helpers/onnx-models.ts'
import { binaryExpectations, multiclassExpectations, publishRows } from '../helpers/model-data.ts'
import type { Row } from '../helpers/model-data.ts'
import { createDatasets } from '../../engine/data/datasets.ts'
import { createModels } from '../../engine/models/registry.ts'
import { prng } from '../../engine/seeded-random.ts'
import { createDataServices } from '../../engine/data/data-services.ts'
import { taskAbort } from '../../operators/define.ts'
import type { OperatorContext } from '../../operators/define.ts'
import { runEvaluateGate } from '../../operators/evaluate-gate/run.ts'

// Production: ranks mostly by a, and b with the wrong sign. The candidate ranks as the labels were made.
const PRODUCTION: LinearWeights = { w: [[0.7], [0.1]], b: [-1.05] }
const CANDIDATE: LinearWeights = { w: [[0.9], [-0.5]], b: [0.05] }
// The production model's ranking with another bias: the same AUC, so no improvement.
const NO_BETTER: LinearWeights = { w: [[0.7], [0.1]], b: [-1.1] }
const SOFTMAX: LinearWeights = { w: [[0.8, -0.3, 0.1], [-0.2, 0.5, 0.3]], b: [0.1, 0, -0.2] }
const LINEAR: LinearWeights = { w: [[2], [-1]], b: [0.5] }

function close(actual: unknown, expected: number, what: string, tolerance = 1e-6): void {
  assert.ok(typeof actual === 'number' && Math.abs(actual - expected) <= tolerance, `${what}: ${String(actual)} != ${expected}`)
}

test('evaluate.gate: independent metrics with ties, pass against production, not met once, baselines, multiclass, regression, bad data', { timeout: 300_000 }, async (t) => {
  const engine = await startTestEngine(t, { dags: {}, inProcessWorkers: 1, scheduler: { loopMs: 200, syncEveryMs: 300 } })
  const datasets = createDatasets({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  const models = createModels({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })

  // 400 rows: every (a, b) in 0..3 x 0..3 25 times, so scores come in 16 groups of ties.
  const random = prng(7)
  const rows: Row[] = []
  for (let i = 0; i < 400; i++) {
    const a = i % 4
    const b = Math.floor(i / 4) % 4
    const noise = random() * 2 - 1
    const value = 2 * a - b + 0.5 + noise
    rows.push({ id: i, a, b, y: 0.9 * a - 0.5 * b + noise > 0.7 ? 1 : 0, cls: a > b ? 0 : a === b ? 1 : 2, t: value })
  }
  await publishRows(datasets, 'holdout', { id: 'BIGINT', a: 'BIGINT', b: 'DOUBLE', y: 'BIGINT', cls: 'BIGINT', t: 'DOUBLE' }, [rows.slice(0, 150), rows.slice(150)])
  await publishRows(datasets, 'holdout_nulls', { a: 'BIGINT', b: 'DOUBLE', y: 'BIGINT' }, [rows.map((r, i) => ({ a: r.a!, b: i % 100 === 3 ? null : r.b!, y: r.y! }))])
  const x = rows.map((r) => [r.a as number, r.b as number])
  const y = rows.map((r) => r.y as number)

  const files = mkdtempSync(join(tmpdir(), 'cairn-gate-models-'))
  const register = async (name: string, kind: Parameters<typeof writeOnnxModel>[1], weights: LinearWeights, task: string) => {
    const file = writeOnnxModel(join(files, `${name}-${Math.random().toString(36).slice(2)}.onnx`), kind, weights)
    return (await models.register({ name, file, features: ['a', 'b'], taskKind: task })).version.version
  }
  const v1 = await register('churn', 'logistic', PRODUCTION, 'binary')
  const v2 = await register('churn', 'logistic2', CANDIDATE, 'binary')
  const v3 = await register('churn', 'logistic', NO_BETTER, 'binary')
  await models.setStage('churn', v1, 'production', { user: 'test' })
  assert.deepEqual([v1, v2, v3], [1, 2, 3])
  // Model files by path, relative to the DAG folder, with no metadata: features come from the params.
  mkdirSync(join(engine.dagsFolder, 'models'))
  writeOnnxModel(join(engine.dagsFolder, 'models', 'softmax.onnx'), 'softmax', SOFTMAX)
  writeOnnxModel(join(engine.dagsFolder, 'models', 'linear.onnx'), 'linear', LINEAR)

  // Independent expectations from the test's own forward passes.
  const production = binaryExpectations(x.map((r) => forward('logistic', r, PRODUCTION)[0]!), y)
  const candidate = binaryExpectations(x.map((r) => forward('logistic2', r, CANDIDATE)[1]!), y)
  const noBetter = binaryExpectations(x.map((r) => forward('logistic', r, NO_BETTER)[0]!), y)
  assert.ok(candidate.auc! > production.auc! + 0.01, `the candidate must be better for the test to mean anything: ${candidate.auc} vs ${production.auc}`)
  assert.equal(noBetter.auc, production.auc)

  const ALL = '[auc, accuracy, precision, recall, f1, log_loss, rmse, mae]'
  const dag = (id: string, params: string, extra = '') => engine.writeDag(`${id}.yaml`, `dag: ${id}\ntasks:\n  gate:\n    operator: evaluate.gate\n${extra}    params:\n${params.split('\n').map((l) => `      ${l}`).join('\n')}\n`)
  dag('gate_pass', `model: models:/churn/${v2}\ndataset: holdout\nlabel: y\nmetrics: ${ALL}\nthresholds: { auc: { min: 0.6 }, log_loss: { max: 0.9 } }\ncompare_to: production\nmodel_name: churn\nmin_improvement: { auc: 0.01 }`)
  dag('gate_fail', `model: models:/churn/${v2}\ndataset: holdout@1\nlabel: y\nmetrics: [auc, accuracy]\nthresholds: { auc: { min: 0.999 } }`, '    retries: 2\n    retry_delay: 200ms\n')
  dag('gate_no_better', `model: models:/churn/${v3}\ndataset: holdout\nlabel: y\nmetrics: [auc]\nthresholds: { auc: { min: 0.5 } }\ncompare_to: production\nmodel_name: churn\nmin_improvement: { auc: 0.001 }`, '    retries: 2\n')
  dag('gate_first', `model: models:/churn/${v2}\ndataset: holdout\nlabel: y\nmetrics: [auc]\nthresholds: {}\ncompare_to: production\nmodel_name: lonely`)
  dag('gate_multi', `model: models/softmax.onnx\ndataset: holdout\nlabel: cls\nfeatures: [a, b]\nmetrics: [accuracy, precision, recall, f1, log_loss]\nthresholds: { accuracy: { min: 0.1 } }`)
  dag('gate_reg', `model: models/linear.onnx\ndataset: holdout\nlabel: t\nfeatures: [a, b]\nmetrics: [rmse, mae]\nthresholds: { rmse: { max: 5 } }`)
  dag('gate_nulls', `model: models:/churn/${v1}\ndataset: holdout_nulls\nlabel: y\nmetrics: [auc]\nthresholds: {}`, '    retries: 2\n')
  dag('gate_missing', `model: models:/churn/${v1}\ndataset: holdout\nlabel: y\nfeatures: [a, nope]\nmetrics: [auc]\nthresholds: {}`, '    retries: 2\n')
  // A model file outside the folders tasks may read (DAG folder, CAIRN_HOME, data.allowed_paths, data dir).
  const outsideFile = writeOnnxModel(join(files, 'outside.onnx'), 'logistic', PRODUCTION)
  dag('gate_outside', `model: ${outsideFile}\ndataset: holdout\nlabel: y\nfeatures: [a, b]\nmetrics: [auc]\nthresholds: {}`, '    retries: 2\n')
  // compare_to without model_name: the model to beat is the one the rendered reference names (a file names none).
  engine.writeDag('gate_implied.yaml', `dag: gate_implied
params:
  model: { type: string, default: "models:/churn/${v2}" }
tasks:
  gate:
    operator: evaluate.gate
    retries: 2
    params:
      model: "{{ params.model }}"
      dataset: holdout
      label: y
      features: [a, b]
      metrics: [auc]
      thresholds: {}
      compare_to: production
      min_improvement: { auc: 0.001 }
`)
  const ids = ['gate_pass', 'gate_fail', 'gate_no_better', 'gate_first', 'gate_multi', 'gate_reg', 'gate_nulls', 'gate_missing', 'gate_outside']
  await waitForDags(engine.db, [...ids, 'gate_implied'])

  const runs = Object.fromEntries(await Promise.all(ids.map(async (id) => [id, await engine.trigger(id)] as const)))
  const implied = { better: await engine.trigger('gate_implied'), noBetter: await engine.trigger('gate_implied', { model: `models:/churn/${v3}` }), file: await engine.trigger('gate_implied', { model: 'models/linear.onnx' }) }
  const states = Object.fromEntries(await Promise.all(ids.map(async (id) => [id, await engine.waitForRun(runs[id]!, 120_000)] as const)))
  const gate = async (id: string) => (await taskRows(engine.db, runs[id]!)).get('gate')!
  const log = async (id: string) => (await logLines(engine.db, runs[id]!, 'gate')).map((l) => l.line).join('\n')

  // Passes: every metric equals the independent value, and the baseline is the production version's.
  assert.equal(states.gate_pass, 'success', await log('gate_pass'))
  const pass = (await gate('gate_pass')).outputs as { passed: boolean; metrics: Record<string, number>; baseline_metrics: Record<string, number>; report: Record<string, unknown>[] }
  assert.deepEqual(Object.keys(pass).sort(), ['baseline_metrics', 'metrics', 'passed', 'report'])
  assert.equal(pass.passed, true)
  for (const [metric, value] of Object.entries(candidate)) close(pass.metrics[metric], value, `candidate ${metric}`)
  for (const [metric, value] of Object.entries(production)) close(pass.baseline_metrics[metric], value, `baseline ${metric}`)
  // AUC is a rank statistic of 16 tied groups: exact, not approximately equal.
  assert.equal(pass.metrics.auc, candidate.auc)
  assert.equal(pass.baseline_metrics.auc, production.auc)
  assert.deepEqual(pass.report[0], { metric: 'auc', value: pass.metrics.auc, threshold: { min: 0.6 }, baseline: production.auc, min_improvement: 0.01, passed: true })
  assert.deepEqual(pass.report.map((r) => r.metric), ['auc', 'accuracy', 'precision', 'recall', 'f1', 'log_loss', 'rmse', 'mae'])
  assert.deepEqual(pass.report.find((r) => r.metric === 'log_loss'), { metric: 'log_loss', value: pass.metrics.log_loss, threshold: { max: 0.9 }, baseline: pass.baseline_metrics.log_loss, min_improvement: null, passed: true })

  // Not met: failed once although retries are set, outputs kept, the table in the log.
  assert.equal(states.gate_fail, 'failed')
  const failed = await gate('gate_fail')
  assert.equal(failed.state, 'failed')
  assert.equal(failed.failure_kind, 'gate_not_met')
  assert.deepEqual((await attemptRows(engine.db, runs.gate_fail!, 'gate')).map((a) => a.failure_kind), ['gate_not_met'])
  assert.match(failed.message!, /^gate not met: auc 0\.\d+: 0\.\d+ < min 0\.999$/)
  const kept = failed.outputs as { passed: boolean; metrics: Record<string, number>; baseline_metrics: null; report: Record<string, unknown>[] }
  assert.equal(kept.passed, false)
  assert.equal(kept.baseline_metrics, null)
  assert.equal(kept.metrics.auc, candidate.auc)
  close(kept.metrics.accuracy, candidate.accuracy!, 'accuracy')
  assert.deepEqual(kept.report[0], { metric: 'auc', value: candidate.auc, threshold: { min: 0.999 }, baseline: null, min_improvement: null, passed: false, reason: `${Number(candidate.auc!.toPrecision(6))} < min 0.999` })
  const failLog = await log('gate_fail')
  assert.match(failLog, /METRIC\s+VALUE\s+THRESHOLD\s+BASELINE\s+MIN IMPROVEMENT\s+RESULT/)
  assert.match(failLog, /auc\s+0\.\d+\s+>= 0\.999\s+-\s+-\s+FAILED: /)
  assert.match(failLog, /gate NOT met/)

  // Not better than production: fails on the improvement, baseline in the report.
  assert.equal(states.gate_no_better, 'failed')
  const noBetterRow = await gate('gate_no_better')
  assert.equal(noBetterRow.failure_kind, 'gate_not_met')
  assert.equal((await attemptRows(engine.db, runs.gate_no_better!, 'gate')).length, 1)
  const report = (noBetterRow.outputs as { report: { baseline: number; min_improvement: number; passed: boolean; reason: string }[] }).report[0]!
  assert.equal(report.baseline, production.auc)
  assert.equal(report.min_improvement, 0.001)
  assert.match(report.reason, /improves on the baseline's .* by 0, less than the required 0\.001/)

  // No production version: nothing to beat.
  assert.equal(states.gate_first, 'success', await log('gate_first'))
  const first = (await gate('gate_first')).outputs as { passed: boolean; baseline_metrics: null; report: Record<string, unknown>[] }
  assert.equal(first.baseline_metrics, null)
  assert.deepEqual(first.report, [{ metric: 'auc', value: candidate.auc, threshold: null, baseline: null, min_improvement: null, passed: true }])
  assert.match(await log('gate_first'), /lonely has no production version/)

  // Multiclass [N, 3] and regression [N] from .onnx paths.
  assert.equal(states.gate_multi, 'success', await log('gate_multi'))
  const multi = multiclassExpectations(x.map((r) => forward('softmax', r, SOFTMAX)), rows.map((r) => r.cls as number), 3)
  const multiOut = (await gate('gate_multi')).outputs as { metrics: Record<string, number> }
  for (const [metric, value] of Object.entries(multi)) close(multiOut.metrics[metric], value, `multiclass ${metric}`)
  assert.equal(states.gate_reg, 'success', await log('gate_reg'))
  const values = x.map((r) => forward('linear', r, LINEAR)[0]!)
  const target = rows.map((r) => r.t as number)
  const regOut = (await gate('gate_reg')).outputs as { metrics: Record<string, number> }
  close(regOut.metrics.rmse, Math.sqrt(values.reduce((s, v, i) => s + (v - target[i]!) ** 2, 0) / values.length), 'rmse', 1e-5)
  close(regOut.metrics.mae, values.reduce((s, v, i) => s + Math.abs(v - target[i]!), 0) / values.length, 'mae', 1e-5)

  // Bad data and bad features: clear messages, no retry.
  const nulls = await gate('gate_nulls')
  assert.equal(nulls.failure_kind, 'data_invalid')
  assert.match(nulls.message!, /dataset holdout_nulls@1: "b" has 4 nulls; a model gets no value for them/)
  assert.equal((await attemptRows(engine.db, runs.gate_nulls!, 'gate')).length, 1)
  const missing = await gate('gate_missing')
  assert.equal(missing.failure_kind, 'invalid_params')
  assert.match(missing.message!, /dataset holdout@1 has no column "nope" \(its columns: id, a, b, y, cls, t\)/)
  assert.equal((await attemptRows(engine.db, runs.gate_missing!, 'gate')).length, 1)

  const outside = await gate('gate_outside')
  assert.equal(outside.failure_kind, 'invalid_params')
  assert.match(outside.message!, /^model file .*outside\.onnx is outside the folders a task may read \(.*add a folder to data\.allowed_paths/)
  assert.equal((await attemptRows(engine.db, runs.gate_outside!, 'gate')).length, 1)

  // compare_to without model_name, the model a template rendered to models:/churn/N: churn's production version is the baseline.
  assert.equal(await engine.waitForRun(implied.better, 120_000), 'success', (await logLines(engine.db, implied.better, 'gate')).map((l) => l.line).join('\n'))
  const impliedBetter = (await taskRows(engine.db, implied.better)).get('gate')!.outputs as { passed: boolean; metrics: Record<string, number>; baseline_metrics: Record<string, number> | null }
  assert.equal(impliedBetter.metrics.auc, candidate.auc)
  assert.equal(impliedBetter.baseline_metrics?.auc, production.auc)
  assert.match((await logLines(engine.db, implied.better, 'gate')).map((l) => l.line).join('\n'), /the baseline is the production version of churn, the model of models:\/churn\/2/)
  assert.equal(await engine.waitForRun(implied.noBetter, 120_000), 'failed')
  const impliedNoBetter = (await taskRows(engine.db, implied.noBetter)).get('gate')!
  assert.equal(impliedNoBetter.failure_kind, 'gate_not_met')
  assert.equal((impliedNoBetter.outputs as { report: { baseline: number }[] }).report[0]!.baseline, production.auc)
  assert.equal((await attemptRows(engine.db, implied.noBetter, 'gate')).length, 1)
  // Rendered to a file: no model to compare with; invalid params at once, not retried, nothing scored.
  assert.equal(await engine.waitForRun(implied.file, 120_000), 'failed')
  const impliedFile = (await taskRows(engine.db, implied.file)).get('gate')!
  assert.equal(impliedFile.failure_kind, 'invalid_params')
  assert.match(impliedFile.message!, /^compare_to: production needs model_name when the model is a file \("models\/linear\.onnx"\).*set model_name to the registered model to compare with$/)
  assert.equal((await attemptRows(engine.db, implied.file, 'gate')).length, 1)
  assert.doesNotMatch((await logLines(engine.db, implied.file, 'gate')).map((l) => l.line).join('\n'), /scored /)

  // Cancelled once the candidate is scored (it logs then): the attempt ends as cancelled, with no verdict.
  const controller = new AbortController()
  const ctx: OperatorContext = {
    dagId: 'adhoc', runId: 'no-run', taskId: 'gate', attempt: 1,
    interval: { start: new Date(), end: new Date(), logicalDate: new Date() },
    data: createDataServices(engine.db, engine.data, { dagId: 'adhoc', runId: 'no-run', taskId: 'gate', attempt: 1, claimId: '00000000-0000-0000-0000-000000000000' }, {}),
    signal: controller.signal, env: {}, workerEnv: {}, workdir: engine.dir,
    log: {
      info: (message) => void (message.startsWith('scored ') && controller.abort(taskAbort('cancelled', 'cancelled by the test'))),
      warn: () => undefined,
      error: () => undefined,
    },
    output: () => undefined,
  }
  const cancelled = await runEvaluateGate({ model: `models:/churn/${v2}`, dataset: 'holdout', label: 'y', metrics: ['auc'], thresholds: {} }, ctx)
  assert.deepEqual(cancelled, { ok: false, kind: 'cancelled', retryable: false, message: 'cancelled by the test' })
})
