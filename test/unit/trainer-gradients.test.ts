/**
 * The trainer's back-propagation and Adam are written out by hand (engine/train/model.ts) for speed: they must
 * equal TF.js's own autodiff of the same loss and TF.js's AdamOptimizer, for every task and model kind.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Adam, createModel, gradients, loadTf, logits } from '../../engine/train/model.ts'
import type { Model, Tf } from '../../engine/train/model.ts'
import { prng } from '../../engine/train/data.ts'
import type { Task } from '../../engine/train/data.ts'

const { tf } = await loadTf('wasm')

/** The reference loss, as TF.js ops (what TF.js's tape differentiates). */
function referenceLoss(tf: Tf, task: Task, model: Model, x: Float32Array, y: Float32Array, rows: number) {
  const z = logits(tf, model, tf.tensor2d(x, [rows, model.spec.inputs]))
  if (task === 'binary') {
    const zz = z.reshape([-1])
    const ys = tf.tensor1d(y)
    return tf.mean(tf.add(tf.sub(tf.relu(zz), tf.mul(zz, ys)), tf.log1p(tf.exp(tf.neg(tf.abs(zz)))))) as ReturnType<typeof tf.scalar>
  }
  if (task === 'multiclass') {
    const onehot = tf.oneHot(tf.tensor1d(Int32Array.from(y), 'int32'), model.spec.outputs)
    return tf.mean(tf.sub(tf.logSumExp(z, 1), tf.sum(tf.mul(onehot, z), 1))) as ReturnType<typeof tf.scalar>
  }
  return tf.mean(tf.square(tf.sub(z.reshape([-1]), tf.tensor1d(y)))) as ReturnType<typeof tf.scalar>
}

function data(rows: number, inputs: number, task: Task, seed: number) {
  const random = prng(seed)
  const x = Float32Array.from({ length: rows * inputs }, () => random() * 4 - 2)
  const y = Float32Array.from({ length: rows }, () => (task === 'binary' ? (random() > 0.5 ? 1 : 0) : task === 'multiclass' ? Math.floor(random() * 3) : random() * 10 - 5))
  return { x, y }
}

const cases: { task: Task; kind: 'mlp' | 'logistic'; hidden: number[] }[] = [
  { task: 'binary', kind: 'mlp', hidden: [8, 4] },
  { task: 'binary', kind: 'logistic', hidden: [] },
  { task: 'multiclass', kind: 'mlp', hidden: [6] },
  { task: 'regression', kind: 'mlp', hidden: [5, 5, 3] },
]

for (const { task, kind, hidden } of cases) {
  test(`hand-written gradients equal TF.js autodiff (${task}, ${kind} ${hidden.join('-')})`, () => {
    const model = createModel(tf, { kind, hidden, task, inputs: 7, outputs: task === 'multiclass' ? 3 : 1 }, 11)
    for (const rows of [1, 37, 256]) {
      const { x, y } = data(rows, 7, task, rows)
      const mine = gradients(tf, model, x, y, rows)
      const { value, grads } = tf.variableGrads(() => referenceLoss(tf, task, model, x, y, rows), model.variables)
      const expected = new Float32Array(model.size)
      let offset = 0
      for (const v of model.variables) {
        expected.set(grads[v.name]!.dataSync(), offset)
        offset += v.size
      }
      let diff = 0
      for (let i = 0; i < model.size; i++) diff = Math.max(diff, Math.abs(mine.flat[i]! - expected[i]!))
      const scale = Math.max(1, ...Array.from(expected, Math.abs))
      assert.ok(diff <= 1e-5 * scale, `${rows} rows: max abs gradient diff ${diff}`)
      assert.ok(Math.abs(mine.loss - value.dataSync()[0]!) <= 1e-5 * Math.max(1, Math.abs(mine.loss)), `${rows} rows: loss ${mine.loss} vs ${value.dataSync()[0]}`)
      tf.dispose([value, ...Object.values(grads)])
    }
  })
}

test('Adam on flat weights makes the same steps as TF.js AdamOptimizer', () => {
  const spec = { kind: 'mlp' as const, hidden: [8, 4], task: 'binary' as const, inputs: 7, outputs: 1 }
  const a = createModel(tf, spec, 5)
  const b = createModel(tf, spec, 5)
  const mine = new Adam(a, 0.01)
  const reference = tf.train.adam(0.01)
  const random = prng(3)
  for (let step = 0; step < 50; step++) {
    // The same gradient for both, not derived from the (diverging, if wrong) weights.
    const flat = Float32Array.from({ length: a.size }, () => random() * 2 - 1)
    mine.apply(tf, a, flat)
    const named: Record<string, ReturnType<typeof tf.tensor>> = {}
    let offset = 0
    for (const v of b.variables) {
      named[v.name] = tf.tensor(flat.subarray(offset, offset + v.size), v.shape)
      offset += v.size
    }
    reference.applyGradients(named as Parameters<typeof reference.applyGradients>[0])
    tf.dispose(Object.values(named))
  }
  let diff = 0
  a.variables.forEach((v, i) => {
    const x = v.dataSync()
    const y = b.variables[i]!.dataSync()
    for (let k = 0; k < x.length; k++) diff = Math.max(diff, Math.abs(x[k]! - y[k]!))
  })
  // Float rounding only: the weights moved by about 0.5 in these steps.
  assert.ok(diff <= 1e-5, `max abs weight diff ${diff} after 50 steps`)
})

test('an empty shard has zero gradients and zero loss', () => {
  const model = createModel(tf, { kind: 'mlp', hidden: [4], task: 'binary', inputs: 3, outputs: 1 }, 1)
  const g = gradients(tf, model, new Float32Array(0), new Float32Array(0), 0)
  assert.equal(g.loss, 0)
  assert.ok(g.flat.every((v) => v === 0))
})
