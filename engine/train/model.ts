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
 * `threads` is the wasm backend's thread count (1 when it runs single-threaded, as it does under Node: its
 * threaded build is used only in browsers); the trainer asks for the cores divided by the ranks sharing the
 * node, so ranks on one machine never compete for cores.
 */
export async function loadTf(preferred?: 'wasm' | 'cpu', wasmThreads = 1): Promise<{ tf: Tf; backend: string; module: string; threads?: number }> {
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
    const wasm = await import('@tensorflow/tfjs-backend-wasm')
    wasm.setThreadsCount(Math.max(1, Math.floor(wasmThreads)))
    if (await tf.setBackend('wasm')) {
      await tf.ready()
      return { tf, backend: 'wasm', module: '@tensorflow/tfjs-backend-wasm', threads: wasm.getThreadsCount() }
    }
  }
  await tf.setBackend('cpu')
  await tf.ready()
  return { tf, backend: 'cpu', module: '@tensorflow/tfjs', threads: 1 }
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

/** The model's output: probability of the positive class [N, 1], class probabilities [N, K], or the value. */
export function predict(tf: Tf, model: Model, x: Float32Array, rows: number): Float32Array {
  return tf.tidy(() => {
    const z = logits(tf, model, tf.tensor2d(x, [rows, model.spec.inputs]))
    const out = model.spec.task === 'binary' ? tf.sigmoid(z) : model.spec.task === 'multiclass' ? tf.softmax(z) : z
    return out.dataSync() as Float32Array
  })
}

/**
 * Mean loss and its gradients, flattened in variable order, for one shard: back-propagation written out
 * for the trainer's one architecture (dense layers, ReLU, a task link on logits) instead of TF.js's tape.
 * A step is then about 20 kernel calls (one fused matMul + bias + ReLU per layer forward; a matMul, a sum, and
 * for hidden layers a matMul, a step and a mul per layer backward) instead of about 60; with small models,
 * where each call's fixed cost outweighs its arithmetic, that fixed cost decides how far adding ranks can
 * speed training up (docs/training.md). The loss value is computed in JS from the logits (Float64).
 * Gradients of the mean loss: d loss / d logits = (sigmoid(z) - y) / n (binary cross-entropy),
 * (softmax(z) - onehot(y)) / n (softmax cross-entropy), 2 (z - y) / n (squared error).
 */
export function gradients(tf: Tf, model: Model, x: Float32Array, y: Float32Array, rows: number): { loss: number; flat: Float32Array } {
  const flat = new Float32Array(model.size)
  if (rows === 0) return { loss: 0, flat }
  const { task, inputs, outputs } = model.spec
  let meanLoss = 0
  tf.tidy(() => {
    const xs = tf.tensor2d(x, [rows, inputs])
    // The input of each layer (xs, then each hidden layer's ReLU output).
    const acts: TfModule.Tensor2D[] = [xs]
    let z = xs
    model.layers.forEach((layer, l) => {
      const last = l + 1 === model.layers.length
      z = tf.fused.matMul({ a: z, b: layer.kernel, bias: layer.bias, activation: last ? 'linear' : 'relu' }) as TfModule.Tensor2D
      if (!last) acts.push(z)
    })
    const logitValues = z.dataSync() as Float32Array
    meanLoss = lossOf(task, logitValues, y, rows, outputs)
    let d: TfModule.Tensor2D
    if (task === 'binary') d = tf.mul(tf.sub(tf.sigmoid(z), tf.tensor2d(y, [rows, 1])), 1 / rows)
    else if (task === 'multiclass') d = tf.mul(tf.sub(tf.softmax(z), tf.oneHot(tf.tensor1d(Int32Array.from(y), 'int32'), outputs)), 1 / rows)
    else d = tf.mul(tf.sub(z, tf.tensor2d(y, [rows, 1])), 2 / rows)
    const grads: TfModule.Tensor[] = []
    for (let l = model.layers.length - 1; l >= 0; l--) {
      const a = acts[l]!
      // Transposes written out: the wasm backend's matMul with a transposed operand takes a path 4-6x slower
      // than a transpose followed by a plain matMul (measured at 512 x 32).
      grads[2 * l] = tf.matMul(tf.transpose(a), d)
      grads[2 * l + 1] = tf.sum(d, 0)
      // Through the layer's kernel, then through the ReLU that made its input (a > 0 exactly where it passed).
      if (l > 0) d = tf.mul(tf.matMul(d, tf.transpose(model.layers[l]!.kernel)), tf.step(a))
    }
    let offset = 0
    for (const g of grads) {
      const values = g.dataSync()
      flat.set(values, offset)
      offset += values.length
    }
  })
  return { loss: meanLoss, flat }
}

/** The task's mean loss over rows, from logits (row-major, rows x outputs), in Float64. */
function lossOf(task: Task, z: Float32Array, y: Float32Array, rows: number, outputs: number): number {
  let sum = 0
  for (let i = 0; i < rows; i++) {
    if (task === 'binary') {
      const v = z[i]!
      // max(z, 0) - z*y + log(1 + exp(-|z|)): the numerically stable form.
      sum += Math.max(v, 0) - v * y[i]! + Math.log1p(Math.exp(-Math.abs(v)))
    } else if (task === 'multiclass') {
      let max = -Infinity
      for (let k = 0; k < outputs; k++) max = Math.max(max, z[i * outputs + k]!)
      let e = 0
      for (let k = 0; k < outputs; k++) e += Math.exp(z[i * outputs + k]! - max)
      sum += max + Math.log(e) - z[i * outputs + y[i]!]!
    } else sum += (z[i]! - y[i]!) ** 2
  }
  return sum / rows
}

/**
 * Adam on the flattened weights, in JS: every rank applies the same averaged gradient, so every rank
 * keeps the same weights. The update is TF.js's AdamOptimizer's (bias-corrected moments, epsilon 1e-7
 * added to the corrected root), computed elementwise in one pass; the new weights then go to the model's
 * variables, one assignment each. TF.js's optimizer spends about 15 kernel calls per variable on the same
 * arithmetic, which on small models costs more than the gradients themselves.
 */
export class Adam {
  private readonly first: Float32Array
  private readonly second: Float32Array
  private readonly values: Float32Array
  private beta1Power = 1
  private beta2Power = 1
  private readonly learningRate: number
  private readonly beta1 = 0.9
  private readonly beta2 = 0.999
  private readonly epsilon = 1e-7

  constructor(model: Model, learningRate: number) {
    this.learningRate = learningRate
    this.first = new Float32Array(model.size)
    this.second = new Float32Array(model.size)
    this.values = new Float32Array(model.size)
    let offset = 0
    for (const v of model.variables) {
      this.values.set(v.dataSync() as Float32Array, offset)
      offset += v.size
    }
  }

  /** Applies a flattened gradient (variable order) to the model. */
  apply(tf: Tf, model: Model, flat: Float32Array): void {
    const { beta1, beta2, epsilon, learningRate, first, second, values } = this
    this.beta1Power *= beta1
    this.beta2Power *= beta2
    const c1 = 1 - this.beta1Power
    const c2 = 1 - this.beta2Power
    for (let i = 0; i < values.length; i++) {
      const g = flat[i]!
      first[i] = beta1 * first[i]! + (1 - beta1) * g
      second[i] = beta2 * second[i]! + (1 - beta2) * g * g
      values[i] = values[i]! - (learningRate * (first[i]! / c1)) / (Math.sqrt(second[i]! / c2) + epsilon)
    }
    tf.tidy(() => {
      let offset = 0
      for (const v of model.variables) {
        v.assign(tf.tensor(values.subarray(offset, offset + v.size), v.shape))
        offset += v.size
      }
    })
  }
}

/** Weights in layer order: kernel [in, out] then bias [out]. */
export function weights(model: Model): { kernel: Float32Array; bias: Float32Array; shape: [number, number] }[] {
  return model.layers.map((layer) => ({
    kernel: layer.kernel.dataSync() as Float32Array,
    bias: layer.bias.dataSync() as Float32Array,
    shape: layer.kernel.shape as [number, number],
  }))
}
