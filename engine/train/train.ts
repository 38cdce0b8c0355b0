/**
 * One rank of a training run: read the data, split, standardize, train synchronously with the other
 * ranks (each global batch split in contiguous shards by rank, gradients averaged through rank 0), then,
 * on rank 0, evaluate both splits and export the model. Every rank draws the same shuffles from the seed,
 * so with the same global batch the result does not depend on the number of ranks (up to float rounding).
 */
import { availableParallelism } from 'node:os'
import { gather, permutation, prng, readTable, splitRows, standardization, TrainInputError } from './data.ts'
import type { Task } from './data.ts'
import { openCollective } from './collective.ts'
import { Adam, createModel, gradients, loadTf, predict, weights } from './model.ts'
import { exportOnnx } from './onnx-export.ts'
import { splitMetrics } from './metrics.ts'
import type { SplitMetrics } from './metrics.ts'

export interface TrainConfig {
  files: string[]
  label: string
  features?: string[]
  task: Task
  model: { kind: 'mlp' | 'logistic'; hidden: number[] }
  epochs: number
  batchSize: number
  learningRate: number
  seed: number
  /** Fraction of rows held out for validation. @default 0.2 */
  validationFraction: number
  rank: number
  worldSize: number
  /** Ranks on this node (LOCAL_WORLD_SIZE). @default 1 */
  localWorldSize?: number
  masterAddr: string
  masterPort: number
  /** Peer join and per-step timeout. @default 300000 */
  timeoutMs: number
  /** Force a backend (tests, benchmarks); default: tfjs-node-gpu, tfjs-node, else wasm. */
  backend?: 'wasm' | 'cpu'
}

export interface TrainResult {
  /** Rank 0 only. */
  onnx?: Uint8Array
  metrics?: Record<string, unknown>
  /** Rank 0 only: the trained TF.js model's output on raw (unstandardized) rows, as the ONNX graph computes it. */
  predict?: (raw: Float32Array, rows: number) => Float32Array
}

export async function train(config: TrainConfig, log: (line: string) => void): Promise<TrainResult> {
  if (config.batchSize < 1 || config.epochs < 1 || !(config.learningRate > 0)) throw new TrainInputError('epochs, batch size and learning rate must be positive')
  // Ranks that share a node share its cores.
  const { tf, backend, module, threads } = await loadTf(config.backend, availableParallelism() / (config.localWorldSize ?? 1))
  log(`backend ${backend} (${module})${threads === undefined ? '' : `, ${threads} thread(s) per rank`}`)
  const table = await readTable(config.files, config.label, config.task, config.features)
  for (const [name, count] of Object.entries(table.nullCounts)) if (count > 0) log(`feature ${name}: ${count} null values read as 0`)
  const split = splitRows(table.rows, config.validationFraction, config.seed)
  if (split.train.length === 0) throw new TrainInputError('no training rows after the validation split')
  const stats = standardization(table, split.train)
  const trainSet = gather(table, split.train, stats)
  const outputs = config.task === 'multiclass' ? table.classes!.length : 1
  log(`${table.rows} rows (${split.train.length} train, ${split.validation.length} validation), ${table.features.length} features: ${table.features.join(', ')}`)

  const model = createModel(tf, { kind: config.model.kind, hidden: config.model.kind === 'mlp' ? config.model.hidden : [], task: config.task, inputs: table.features.length, outputs }, config.seed)
  const optimizer = new Adam(model, config.learningRate)
  const collective = await openCollective({
    rank: config.rank,
    worldSize: config.worldSize,
    masterAddr: config.masterAddr,
    masterPort: config.masterPort,
    vectorLength: model.size + 1,
    timeoutMs: config.timeoutMs,
  })
  const f = table.features.length
  const n = split.train.length
  const shuffle = prng(config.seed + 1)
  const history: { epoch: number; loss: number }[] = []
  const started = performance.now()
  const vector = new Float32Array(model.size + 1)
  let waited = 0
  try {
    for (let epoch = 1; epoch <= config.epochs; epoch++) {
      const order = permutation(n, shuffle)
      let lossSum = 0
      for (let start = 0; start < n; start += config.batchSize) {
        const size = Math.min(config.batchSize, n - start)
        const base = Math.floor(size / config.worldSize)
        const extra = size % config.worldSize
        const lo = start + config.rank * base + Math.min(config.rank, extra)
        const count = base + (config.rank < extra ? 1 : 0)
        const x = new Float32Array(count * f)
        const y = new Float32Array(count)
        for (let i = 0; i < count; i++) {
          const r = order[lo + i]!
          x.set(trainSet.x.subarray(r * f, (r + 1) * f), i * f)
          y[i] = trainSet.y[r]!
        }
        const shard = gradients(tf, model, x, y, count)
        vector.set(shard.flat)
        vector[model.size] = shard.loss
        const waitStart = performance.now()
        const mean = await collective.average(vector, count)
        waited += performance.now() - waitStart
        optimizer.apply(tf, model, mean.subarray(0, model.size))
        lossSum += mean[model.size]! * size
      }
      history.push({ epoch, loss: lossSum / n })
      log(`epoch ${epoch}/${config.epochs} loss ${(lossSum / n).toFixed(6)}`)
    }
  } finally {
    collective.close()
  }
  const seconds = (performance.now() - started) / 1000
  const rowsPerSecond = (n * config.epochs) / seconds
  log(`trained ${n * config.epochs} rows in ${seconds.toFixed(2)} s (${Math.round(rowsPerSecond)} rows/s over ${config.worldSize} rank(s)), ${(waited / 1000).toFixed(2)} s of it exchanging gradients`)
  if (config.rank !== 0) return {}

  const evaluate = (rows: Uint32Array): SplitMetrics => {
    const set = gather(table, rows, stats)
    const out = new Float32Array(rows.length * outputs)
    const chunk = 8192
    for (let s = 0; s < rows.length; s += chunk) {
      const m = Math.min(chunk, rows.length - s)
      out.set(predict(tf, model, set.x.subarray(s * f, (s + m) * f), m), s * outputs)
    }
    return splitMetrics(config.task, out, set.y, outputs)
  }
  const metrics = {
    task: config.task,
    model: config.model.kind === 'mlp' ? { kind: 'mlp', hidden: config.model.hidden } : { kind: 'logistic' },
    label: config.label,
    features: table.features,
    // A null feature value was read as this (before standardization); scoring the model does the same.
    null_as: 0,
    ...(table.classes ? { classes: table.classes } : {}),
    backend,
    ...(threads === undefined ? {} : { threads }),
    parameters: model.size,
    world_size: config.worldSize,
    seed: config.seed,
    epochs: config.epochs,
    batch_size: config.batchSize,
    learning_rate: config.learningRate,
    train: evaluate(split.train),
    validation: evaluate(split.validation),
    history,
    train_seconds: seconds,
    rows_per_second: rowsPerSecond,
    exchange_seconds: waited / 1000,
  }
  const onnx = exportOnnx({
    task: config.task,
    features: table.features,
    mean: stats.mean,
    std: stats.std,
    layers: weights(model),
    metadata: { label: config.label, null_as: '0', ...(table.classes ? { classes: JSON.stringify(table.classes) } : {}) },
  })
  const predictRaw = (raw: Float32Array, rows: number) => {
    const x = new Float32Array(raw.length)
    const tmp = new Float32Array(1)
    for (let k = 0; k < raw.length; k++) {
      tmp[0] = raw[k]! - stats.mean[k % f]!
      x[k] = tmp[0] / stats.std[k % f]!
    }
    return predict(tf, model, x, rows)
  }
  return { onnx, metrics, predict: predictRaw }
}
