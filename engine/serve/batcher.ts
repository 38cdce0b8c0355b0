/**
 * Dynamic batching: requests to one model version that arrive while it is busy run as one batch of
 * up to `maxBatch` rows, their inputs joined along the first dimension and the outputs split back by
 * rows. One batch runs at a time per version (one per model thread with `concurrency`), so under load
 * batches form by themselves while the previous one runs, and a request that finds the version idle runs at once (with the others that
 * arrived in the same turn of the event loop), or after `maxDelayMs` when that is set above 0 (more
 * requests per batch, for a model whose run costs much more than a request). Only for models whose
 * inputs and outputs all have a dynamic first dimension; requests whose other dimensions differ go in
 * separate batches.
 */
import type { InputTensor, OutputTensor, TensorData, TensorSpec } from './protocol.ts'

export interface BatchOptions {
  /** @default 64 */
  maxBatch?: number
  /** @default 0 */
  maxDelayMs?: number
  /** Batches of one version running at once (its model threads). @default 1 */
  concurrency?: number
}

export type RunFn = (inputs: readonly InputTensor[]) => Promise<OutputTensor[]>

interface Pending {
  inputs: readonly InputTensor[]
  rows: number
  key: string
  resolve(outputs: OutputTensor[]): void
  reject(error: unknown): void
}

export function canBatch(inputs: readonly TensorSpec[], outputs: readonly TensorSpec[]): boolean {
  const batchable = (s: TensorSpec) => s.shape.length >= 1 && s.shape[0] === -1 && s.datatype !== 'BYTES'
  return inputs.length > 0 && inputs.every(batchable) && outputs.every(batchable)
}

/** A run function that batches concurrent calls of `run` (see above). */
export function createBatcher(run: RunFn, options: BatchOptions = {}): RunFn {
  const maxBatch = options.maxBatch ?? 64
  const maxDelayMs = options.maxDelayMs ?? 0
  const concurrency = Math.max(1, options.concurrency ?? 1)
  const queue: Pending[] = []
  let queuedRows = 0
  let running = 0
  let timer: NodeJS.Timeout | NodeJS.Immediate | undefined

  function schedule(): void {
    if (running >= concurrency || timer !== undefined) return
    if (queuedRows >= maxBatch) {
      timer = setImmediate(fire)
      return
    }
    timer = maxDelayMs > 0 ? setTimeout(fire, maxDelayMs) : setImmediate(fire)
  }

  function fire(): void {
    timer = undefined
    if (running >= concurrency || queue.length === 0) return
    const first = queue[0]!
    const batch: Pending[] = []
    let rows = 0
    for (let i = 0; i < queue.length; ) {
      const p = queue[i]!
      if (p.key === first.key && (batch.length === 0 || rows + p.rows <= maxBatch)) {
        batch.push(p)
        rows += p.rows
        queue.splice(i, 1)
        queuedRows -= p.rows
      } else i++
      if (rows >= maxBatch) break
    }
    running++
    void runBatch(batch, rows).finally(() => {
      running--
      // Whatever queued meanwhile has waited long enough.
      if (queue.length > 0 && timer === undefined) timer = setImmediate(fire)
    })
    // Another batch may start beside this one (another model thread) with what is left.
    if (queue.length > 0 && running < concurrency && timer === undefined) timer = setImmediate(fire)
  }

  async function runBatch(batch: Pending[], rows: number): Promise<void> {
    if (batch.length === 1) {
      const only = batch[0]!
      await run(only.inputs).then(only.resolve, only.reject)
      return
    }
    let outputs: OutputTensor[]
    try {
      outputs = await run(joinInputs(batch, rows))
    } catch (error) {
      for (const p of batch) p.reject(error)
      return
    }
    if (outputs.some((o) => o.shape[0] !== rows)) {
      // The model does not give one output row per input row: run each request alone.
      await Promise.all(batch.map((p) => run(p.inputs).then(p.resolve, p.reject)))
      return
    }
    let offset = 0
    for (const p of batch) {
      p.resolve(outputs.map((o) => sliceRows(o, rows, offset, p.rows)))
      offset += p.rows
    }
  }

  return (inputs) => {
    const rows = inputs[0]!.shape[0]!
    if (rows >= maxBatch || inputs.some((t) => t.shape[0] !== rows || t.shape.length === 0)) return run(inputs)
    const key = inputs.map((t) => `${t.name}:${t.shape.slice(1).join('x')}`).join('|')
    return new Promise<OutputTensor[]>((resolve, reject) => {
      queue.push({ inputs, rows, key, resolve, reject })
      queuedRows += rows
      schedule()
    })
  }
}

function joinInputs(batch: Pending[], rows: number): InputTensor[] {
  return batch[0]!.inputs.map((first, k) => {
    const total = batch.reduce((n, p) => n + p.inputs[k]!.data.length, 0)
    const data = new (first.data.constructor as new (n: number) => Exclude<TensorData, string[]>)(total)
    let at = 0
    for (const p of batch) {
      const part = p.inputs[k]!.data as Exclude<TensorData, string[]>
      ;(data as Float32Array).set(part as Float32Array, at)
      at += part.length
    }
    return { name: first.name, datatype: first.datatype, shape: [rows, ...first.shape.slice(1)], data }
  })
}

function sliceRows(o: OutputTensor, rows: number, offset: number, count: number): OutputTensor {
  const perRow = o.data.length / rows
  const data = (o.data as Float32Array).slice(offset * perRow, (offset + count) * perRow) as unknown as TensorData
  return { name: o.name, datatype: o.datatype, shape: [count, ...o.shape.slice(1)], data }
}
