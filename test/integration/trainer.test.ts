/**
 * The built-in trainer as users run it: `cairn-train` processes on 127.0.0.1, one per rank.
 * Determinism (same seed -> the same model file, byte for byte), 2 ranks = 1 rank with the same global
 * batch, a real signal learned, and bad inputs or a dying rank ending with a clear message and exit code.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { writeTrainingSet } from '../helpers/train-data.ts'
import { freePort, initializers, maxAbsDiff, startRank } from '../helpers/cairn-train.ts'

async function workdir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-train-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const common = (file: string, out: string, extra: string[] = []) => [
  '--data', file, '--label', 'label', '--task', 'binary', '--output', out, '--backend', 'wasm', '--epochs', '3', '--batch-size', '128', '--hidden', '16,8', ...extra,
]

test('same inputs and seed give the same model file byte for byte; another seed gives another', async (t) => {
  const dir = await workdir(t)
  const { file } = await writeTrainingSet(dir, { rows: 3000, task: 'binary' })
  const runs = await Promise.all(
    [['a', '7'], ['b', '7'], ['c', '8']].map(([name, seed]) => startRank(common(file, path.join(dir, name!), ['--seed', seed!])).done),
  )
  for (const run of runs) assert.equal(run.code, 0, run.output)
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => readFile(path.join(dir, name, 'model.onnx'))))
  assert.ok(a!.equals(b!), 'two runs with seed 7 wrote different model files')
  assert.ok(maxAbsDiff(initializers(a!), initializers(c!)) > 1e-3, 'seed 8 trained the same weights as seed 7')
})

for (const batch of [256, 255]) {
  test(`2 ranks equal 1 rank with the same global batch (${batch}) and seed`, async (t) => {
    const dir = await workdir(t)
    const { file } = await writeTrainingSet(dir, { rows: 4000, task: 'binary', nulls: true })
    const args = (out: string) => common(file, path.join(dir, out), ['--batch-size', String(batch), '--seed', '3'])
    const single = startRank(args('one'))
    const port = String(await freePort())
    const env = { WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: port }
    // Rank 1 first: it must wait for rank 0 to listen.
    const rank1 = startRank(args('two-r1'), { ...env, RANK: '1' })
    const rank0 = startRank(args('two'), { ...env, RANK: '0' })
    const [r0, r1, one] = await Promise.all([rank0.done, rank1.done, single.done])
    assert.equal(one.code, 0, one.output)
    assert.equal(r0.code, 0, r0.output)
    assert.equal(r1.code, 0, r1.output)
    assert.match(r0.output, /backend wasm/)
    // Both ranks computed the same mean (each computes it in the two-rank exchange): the same loss every epoch.
    const losses = [r0, r1].map((run) => [...run.output.matchAll(/epoch \d+\/3 loss (\S+)/g)].map((m) => m[1]))
    assert.equal(losses[0]!.length, 3)
    assert.deepEqual(losses[1], losses[0])
    assert.match(r0.output, /feature x1: \d+ null values read as 0/)
    const diff = maxAbsDiff(initializers(await readFile(path.join(dir, 'one', 'model.onnx'))), initializers(await readFile(path.join(dir, 'two', 'model.onnx'))))
    t.diagnostic(`max abs weight diff 1 vs 2 ranks: ${diff}`)
    assert.ok(diff <= 1e-4, `max abs weight diff ${diff}`)
    const m1 = JSON.parse(await readFile(path.join(dir, 'one', 'metrics.json'), 'utf8'))
    const m2 = JSON.parse(await readFile(path.join(dir, 'two', 'metrics.json'), 'utf8'))
    assert.equal(m2.world_size, 2)
    assert.ok(Math.abs(m1.validation.auc - m2.validation.auc) < 1e-3)
    // Only rank 0 writes.
    await assert.rejects(readFile(path.join(dir, 'two-r1', 'metrics.json')))
  })
}

test('3 ranks (gradients averaged through rank 0, not the two-rank exchange) equal 1 rank', async (t) => {
  const dir = await workdir(t)
  const { file } = await writeTrainingSet(dir, { rows: 3000, task: 'binary' })
  const args = (out: string) => common(file, path.join(dir, out), ['--batch-size', '100', '--seed', '5'])
  const single = startRank(args('one'))
  const env = { WORLD_SIZE: '3', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(await freePort()) }
  const ranks = [0, 1, 2].map((rank) => startRank(args(`three-r${rank}`), { ...env, RANK: String(rank) }))
  const runs = await Promise.all([single.done, ...ranks.map((r) => r.done)])
  for (const run of runs) assert.equal(run.code, 0, run.output)
  const diff = maxAbsDiff(initializers(await readFile(path.join(dir, 'one', 'model.onnx'))), initializers(await readFile(path.join(dir, 'three-r0', 'model.onnx'))))
  t.diagnostic(`max abs weight diff 1 vs 3 ranks: ${diff}`)
  assert.ok(diff <= 1e-4, `max abs weight diff ${diff}`)
  // Every rank applied the same averaged gradients: the same loss at every epoch.
  const losses = runs.slice(1).map((run) => [...run.output.matchAll(/epoch \d+\/3 loss (\S+)/g)].map((m) => m[1]))
  assert.equal(losses[0]!.length, 3)
  assert.deepEqual(losses[1], losses[0])
  assert.deepEqual(losses[2], losses[0])
})

test('learns a real signal: validation AUC above 0.8 and metrics for both splits', async (t) => {
  const dir = await workdir(t)
  const { file } = await writeTrainingSet(dir, { rows: 8000, task: 'binary' })
  const run = await startRank(['--data', file, '--label', 'label', '--task', 'binary', '--output', dir, '--epochs', '8', '--batch-size', '128', '--features', 'x0,x1,x2,x3,x4,x5']).done
  assert.equal(run.code, 0, run.output)
  const metrics = JSON.parse(await readFile(path.join(dir, 'metrics.json'), 'utf8'))
  assert.deepEqual(metrics.features, ['x0', 'x1', 'x2', 'x3', 'x4', 'x5'])
  assert.equal(metrics.train.rows + metrics.validation.rows, 8000)
  for (const split of ['train', 'validation']) {
    for (const key of ['loss', 'accuracy', 'auc']) assert.equal(typeof metrics[split][key], 'number', `${split}.${key}`)
  }
  assert.ok(metrics.validation.auc > 0.8, `validation AUC ${metrics.validation.auc}`)
  assert.ok(metrics.history.at(-1).loss < metrics.history[0].loss)
})

test('a logistic regression model and a regression task also train', async (t) => {
  const dir = await workdir(t)
  const binary = await writeTrainingSet(dir, { rows: 3000, task: 'binary', name: 'b' })
  const regression = await writeTrainingSet(dir, { rows: 3000, task: 'regression', name: 'r' })
  const [logistic, linear] = await Promise.all([
    startRank(['--data', binary.file, '--label', 'label', '--task', 'binary', '--model', 'logistic', '--features', 'x0,x1', '--output', path.join(dir, 'lg'), '--epochs', '5', '--learning-rate', '0.01']).done,
    startRank(['--data', regression.file, '--label', 'label', '--task', 'regression', '--output', path.join(dir, 'rg'), '--epochs', '10', '--learning-rate', '0.01', '--features', 'x0,x1,x2,x3']).done,
  ])
  assert.equal(logistic.code, 0, logistic.output)
  assert.equal(linear.code, 0, linear.output)
  const lg = JSON.parse(await readFile(path.join(dir, 'lg', 'metrics.json'), 'utf8'))
  assert.ok(lg.validation.auc > 0.75, `logistic AUC ${lg.validation.auc}`)
  const lgWeights = initializers(await readFile(path.join(dir, 'lg', 'model.onnx')))
  assert.equal([...lgWeights.keys()].join(), 'mean,std,W0,B0')
  assert.equal(lgWeights.get('W0')!.length, 2)
  const rg = JSON.parse(await readFile(path.join(dir, 'rg', 'metrics.json'), 'utf8'))
  // The label's own spread is ~ 20 (10 x a unit-variance score and more); a model that learned must do much better.
  assert.ok(rg.validation.rmse < 10, `regression rmse ${rg.validation.rmse}`)
})

test('bad inputs exit with code 2 and say what is wrong', async (t) => {
  const dir = await workdir(t)
  const { file } = await writeTrainingSet(dir, { rows: 200, task: 'binary' })
  const cases: [string[], RegExp][] = [
    [['--label', 'nope', '--task', 'binary'], /label column "nope" is not in the dataset/],
    [['--label', 'label', '--task', 'binary', '--features', 'x0,country'], /feature column "country" has type VARCHAR; features must be numeric or boolean/],
    [['--label', 'label', '--task', 'binary', '--features', 'x0,missing'], /feature column "missing" is not in the dataset/],
    [['--label', 'x0', '--task', 'binary'], /a binary label must be 0\/1 or boolean/],
    [['--label', 'label', '--task', 'ranking'], /--task must be one of binary, multiclass, regression/],
    [['--label', 'label', '--task', 'binary', '--epochs', '0'], /--epochs must be an integer >= 1/],
  ]
  for (const [args, message] of cases) {
    const run = await startRank(['--data', file, '--output', path.join(dir, 'out'), ...args]).done
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.output}`)
    assert.match(run.output, message)
  }
  const missing = await startRank(['--data', path.join(dir, 'none.parquet'), '--output', dir, '--label', 'label', '--task', 'binary']).done
  assert.equal(missing.code, 2, missing.output)
  assert.match(missing.output, /cannot read the dataset files/)
})

test('a rank that dies mid-training fails the others quickly with a message naming it', async (t) => {
  const dir = await workdir(t)
  const { file } = await writeTrainingSet(dir, { rows: 4000, task: 'binary' })
  const port = String(await freePort())
  const env = { WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: port }
  const args = common(file, dir, ['--epochs', '1000', '--batch-size', '64', '--timeout', '120'])
  const rank0 = startRank(args, { ...env, RANK: '0' })
  const rank1 = startRank(args, { ...env, RANK: '1' })
  const deadline = Date.now() + 120_000
  while (!/epoch 1\/1000/.test(rank1.output())) {
    assert.ok(Date.now() < deadline, `rank 1 never finished an epoch: ${rank1.output()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  const killedAt = Date.now()
  rank1.child.kill('SIGKILL')
  const r0 = await rank0.done
  const seconds = (Date.now() - killedAt) / 1000
  assert.equal(r0.code, 1, r0.output)
  assert.match(r0.output, /training failed: rank 1 (closed|lost) the connection/)
  // Well under the 120 s step timeout: the closed socket is noticed, not waited out.
  assert.ok(seconds < 30, `rank 0 took ${seconds} s to fail`)
})

test('rank 0 dying fails the other rank, and a rank that never joins times out', async (t) => {
  const dir = await workdir(t)
  const { file } = await writeTrainingSet(dir, { rows: 4000, task: 'binary' })
  const port = String(await freePort())
  const env = { WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: port }
  const args = common(file, dir, ['--epochs', '1000', '--batch-size', '64'])
  const rank0 = startRank(args, { ...env, RANK: '0' })
  const rank1 = startRank(args, { ...env, RANK: '1' })
  const deadline = Date.now() + 120_000
  while (!/epoch 1\/1000/.test(rank0.output())) {
    assert.ok(Date.now() < deadline, `rank 0 never finished an epoch: ${rank0.output()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  rank0.child.kill('SIGKILL')
  const r1 = await rank1.done
  assert.equal(r1.code, 1, r1.output)
  assert.match(r1.output, /training failed: rank 0 at 127\.0\.0\.1:\d+ (closed|lost) the connection/)

  const alone = await startRank(common(file, dir, ['--timeout', '2']), { ...env, MASTER_PORT: String(await freePort()), RANK: '0' }).done
  assert.equal(alone.code, 1, alone.output)
  assert.match(alone.output, /rank\(s\) 1 did not connect to 127\.0\.0\.1:\d+ within 2 s/)
})

test('a rank that hangs is timed out, and a rank with another model is refused at the handshake', async (t) => {
  const dir = await workdir(t)
  const { file } = await writeTrainingSet(dir, { rows: 4000, task: 'binary' })
  const env = { WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(await freePort()) }
  const args = common(file, dir, ['--epochs', '1000', '--batch-size', '64', '--timeout', '3'])
  const rank0 = startRank(args, { ...env, RANK: '0' })
  const rank1 = startRank(args, { ...env, RANK: '1' })
  t.after(() => {
    rank1.child.kill('SIGKILL')
  })
  const deadline = Date.now() + 120_000
  while (!/epoch 1\/1000/.test(rank1.output())) {
    assert.ok(Date.now() < deadline, `rank 1 never finished an epoch: ${rank1.output()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  rank1.child.kill('SIGSTOP')
  const r0 = await rank0.done
  rank1.child.kill('SIGKILL')
  assert.equal(r0.code, 1, r0.output)
  assert.match(r0.output, /training failed: rank 1 sent nothing for 3 s while waiting for its gradients of step \d+/)

  const env2 = { ...env, MASTER_PORT: String(await freePort()) }
  const other = startRank(common(file, dir, ['--hidden', '8', '--timeout', '20']), { ...env2, RANK: '1' })
  const master = await startRank(common(file, dir, ['--timeout', '20']), { ...env2, RANK: '0' }).done
  assert.equal(master.code, 1, master.output)
  assert.match(master.output, /a rank joined with a model with \d+ values, rank 0 has \d+ \(different features or model\?\)/)
  const refused = await other.done
  assert.equal(refused.code, 1, refused.output)
  assert.match(refused.output, /rank 0 at 127\.0\.0\.1:\d+ (closed|lost) the connection/)
})

test('multiclass with string labels: classes sorted, listed in metrics.json, accuracy above chance', async (t) => {
  const dir = await workdir(t)
  const { file } = await writeTrainingSet(dir, { rows: 4000, task: 'multiclass' })
  const run = await startRank(['--data', file, '--label', 'label', '--task', 'multiclass', '--output', dir, '--epochs', '6', '--batch-size', '128', '--learning-rate', '0.005']).done
  assert.equal(run.code, 0, run.output)
  const metrics = JSON.parse(await readFile(path.join(dir, 'metrics.json'), 'utf8'))
  assert.deepEqual(metrics.classes, ['a', 'b', 'c'])
  assert.ok(metrics.validation.accuracy > 0.6, `accuracy ${metrics.validation.accuracy}`)
  assert.equal(initializers(await readFile(path.join(dir, 'model.onnx'))).get('B2')!.length, 3)
})
