/**
 * The trainer's models on TensorFlow.js: dense layers held as plain variables (kernels `[in, out]`, the
 * layout of ONNX `Gemm`), initialized from the seed in JS (Glorot uniform, zero biases) so that the same
 * seed gives the same weights on every backend and every rank. `mlp` = hidden ReLU layers; `logistic` =
 * none. The last layer's outputs are logits; the task's link (sigmoid, softmax, identity) is applied
 * by `predict` and by the exported graph.
 */
import type * as TfModule from '@tensorflow/tfjs'
import { prng } from './data.ts'
import type { Task } from './data.ts'

export type Tf = typeof TfModule

export interface ModelSpec {
  kind: 'mlp' | 'logistic'
  hidden: number[]
  task: Task
  inputs: number
  /** 1 for binary and regression, K for multiclass. */
  outputs: number
}

export interface Layer {
  kernel: TfModule.Variable
  bias: TfModule.Variable
}

export interface Model {
  spec: ModelSpec
  layers: Layer[]
  variables: TfModule.Variable[]
  /** Total number of parameters (the length of a flattened gradient). */
  size: number
}

/**
 * Loads the fastest backend present: `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`
 * (native TensorFlow, installed by users who can), else the wasm backend that ships with cairn.
 */
export async function loadTf(preferred?: 'wasm' | 'cpu'): Promise<{ tf: Tf; backend: string; module: string }> {
  if (preferred === undefined) {
    for (const name of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      try {
        const tf = (await import(name)) as Tf
        await tf.ready()
        return { tf, backend: tf.getBackend(), module: name }
      } catch {
        // not installed (the usual case): try the next one
      }
    }
  }
  const tf = await import('@tensorflow/tfjs')
  if (preferred !== 'cpu') {
    await import('@tensorflow/tfjs-backend-wasm')
    if (await tf.setBackend('wasm')) {
      await tf.ready()
      return { tf, backend: 'wasm', module: '@tensorflow/tfjs-backend-wasm' }
    }
  }
  await tf.setBackend('cpu')
  await tf.ready()
  return { tf, backend: 'cpu', module: '@tensorflow/tfjs' }
}

let created = 0

export function createModel(tf: Tf, spec: ModelSpec, seed: number): Model {
  const random = prng(seed)
  const sizes = [spec.inputs, ...(spec.kind === 'mlp' ? spec.hidden : []), spec.outputs]
  const prefix = `cairn_${created++}`
  const layers: Layer[] = []
  for (let l = 0; l + 1 < sizes.length; l++) {
    const fanIn = sizes[l]!
    const fanOut = sizes[l + 1]!
    const limit = Math.sqrt(6 / (fanIn + fanOut))
    const values = new Float32Array(fanIn * fanOut)
    for (let i = 0; i < values.length; i++) values[i] = (random() * 2 - 1) * limit
    layers.push({
      kernel: tf.variable(tf.tensor2d(values, [fanIn, fanOut]), true, `${prefix}_k${l}`),
      bias: tf.variable(tf.zeros([fanOut]), true, `${prefix}_b${l}`),
    })
  }
  const variables = layers.flatMap((layer) => [layer.kernel, layer.bias])
  return { spec, layers, variables, size: variables.reduce((n, v) => n + v.size, 0) }
}

/** Logits, [rows, outputs]. */
export function logits(tf: Tf, model: Model, x: TfModule.Tensor2D): TfModule.Tensor2D {
  let h = x
  model.layers.forEach((layer, l) => {
    const z = tf.add(tf.matMul(h, layer.kernel), layer.bias) as TfModule.Tensor2D
    h = l + 1 < model.layers.length ? tf.relu(z) : z
  })
  return h
}

/** Mean loss over the rows: binary cross-entropy on logits, softmax cross-entropy, or squared error. */
export function loss(tf: Tf, task: Task, z: TfModule.Tensor2D, y: TfModule.Tensor1D, classes: number): TfModule.Scalar {
  if (task === 'binary') {
    const zz = z.reshape([-1])
    // max(z, 0) - z*y + log(1 + exp(-|z|)): the numerically stable form.
    return tf.mean(tf.add(tf.sub(tf.relu(zz), tf.mul(zz, y)), tf.log1p(tf.exp(tf.neg(tf.abs(zz))))))
  }
  if (task === 'multiclass') {
    const onehot = tf.oneHot(tf.cast(y, 'int32'), classes)
    return tf.mean(tf.sub(tf.logSumExp(z, 1), tf.sum(tf.mul(onehot, z), 1)))
  }
  return tf.mean(tf.square(tf.sub(z.reshape([-1]), y)))
}

/** The model's output: probability of the positive class [N, 1], class probabilities [N, K], or the value. */
export function predict(tf: Tf, model: Model, x: Float32Array, rows: number): Float32Array {
  return tf.tidy(() => {
    const z = logits(tf, model, tf.tensor2d(x, [rows, model.spec.inputs]))
    const out = model.spec.task === 'binary' ? tf.sigmoid(z) : model.spec.task === 'multiclass' ? tf.softmax(z) : z
    return out.dataSync() as Float32Array
  })
}

/** Mean loss and its gradients, flattened in variable order, for one shard. */
export function gradients(tf: Tf, model: Model, x: Float32Array, y: Float32Array, rows: number): { loss: number; flat: Float32Array } {
  const flat = new Float32Array(model.size)
  if (rows === 0) return { loss: 0, flat }
  return tf.tidy(() => {
    const xs = tf.tensor2d(x, [rows, model.spec.inputs])
    const ys = tf.tensor1d(y)
    const { value, grads } = tf.variableGrads(() => loss(tf, model.spec.task, logits(tf, model, xs), ys, model.spec.outputs), model.variables)
    let offset = 0
    for (const v of model.variables) {
      const g = grads[v.name]!.dataSync()
      flat.set(g, offset)
      offset += g.length
    }
    return { loss: value.dataSync()[0]!, flat }
  })
}

/** Applies a flattened gradient with the optimizer (every rank applies the same one). */
export function applyGradients(tf: Tf, model: Model, optimizer: TfModule.Optimizer, flat: Float32Array): void {
  tf.tidy(() => {
    const named: Record<string, TfModule.Tensor> = {}
    let offset = 0
    for (const v of model.variables) {
      named[v.name] = tf.tensor(flat.subarray(offset, offset + v.size), v.shape)
      offset += v.size
    }
    optimizer.applyGradients(named)
  })
}

/** Weights in layer order: kernel [in, out] then bias [out]. */
export function weights(model: Model): { kernel: Float32Array; bias: Float32Array; shape: [number, number] }[] {
  return model.layers.map((layer) => ({
    kernel: layer.kernel.dataSync() as Float32Array,
    bias: layer.bias.dataSync() as Float32Array,
    shape: layer.kernel.shape as [number, number],
  }))
}
