/** Dynamic batching: concurrent requests run as one batch, each gets its own rows back; shapes that differ run apart; a failed batch fails its requests only. */
import test from 'node:test'
import assert from 'node:assert/strict'
import { canBatch, createBatcher } from '../../engine/serve/batcher.ts'
import type { InputTensor, OutputTensor } from '../../engine/serve/protocol.ts'

/** A fake model: y[r] = sum of row r of x; records the batch sizes it was run with. */
function fakeModel(runs: number[][], options: { failWhen?: (rows: number) => boolean } = {}) {
  return async (inputs: readonly InputTensor[]): Promise<OutputTensor[]> => {
    const x = inputs[0]!
    const [rows, cols] = [x.shape[0]!, x.shape[1]!]
    runs.push([rows, cols])
    await new Promise((r) => setTimeout(r, 5))
    if (options.failWhen?.(rows)) throw new Error('boom')
    const y = new Float32Array(rows)
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) y[r]! += (x.data as Float32Array)[r * cols + c]!
    return [{ name: 'y', datatype: 'FP32', shape: [rows, 1], data: y }]
  }
}

const request = (rows: number, cols: number, base: number): InputTensor[] => [
  { name: 'x', datatype: 'FP32', shape: [rows, cols], data: Float32Array.from({ length: rows * cols }, (_, i) => base + i) },
]
const sums = (rows: number, cols: number, base: number) => Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => base + r * cols + c).reduce((a, b) => a + b, 0))

test('requests that arrive together run as one batch and get their own rows back', async () => {
  const runs: number[][] = []
  const run = createBatcher(fakeModel(runs), { maxBatch: 64 })
  // The first runs alone (the version was idle); the next ten arrive while it runs and form one batch.
  const first = run(request(1, 3, 0))
  await new Promise((r) => setImmediate(r))
  const rest = Array.from({ length: 10 }, (_, i) => run(request(1 + (i % 3), 3, 100 * i)))
  const answers = await Promise.all([first, ...rest])
  assert.deepEqual(runs.map((r) => r[0]), [1, 19])
  answers.slice(1).forEach((out, i) => {
    const rows = 1 + (i % 3)
    assert.deepEqual(out[0]!.shape, [rows, 1])
    assert.deepEqual(Array.from(out[0]!.data as Float32Array), sums(rows, 3, 100 * i))
  })
})

test('batches hold at most maxBatch rows; other shapes and failures stay apart', async () => {
  const runs: number[][] = []
  const run = createBatcher(fakeModel(runs, { failWhen: (rows) => rows === 7 }), { maxBatch: 8 })
  const busy = run(request(1, 2, 0))
  await new Promise((r) => setImmediate(r))
  const a = Array.from({ length: 6 }, (_, i) => run(request(3, 2, i)))
  const odd = run(request(2, 5, 0))
  await Promise.all([busy, ...a, odd])
  assert.ok(runs.every(([rows]) => rows! <= 8), JSON.stringify(runs))
  assert.deepEqual(runs.filter(([, cols]) => cols === 5), [[2, 5]])
  // A batch of 7 rows fails: only its requests fail.
  const runs2: number[][] = []
  const run2 = createBatcher(fakeModel(runs2, { failWhen: (rows) => rows === 7 }), { maxBatch: 64 })
  const lone = run2(request(1, 2, 0))
  await new Promise((r) => setImmediate(r))
  const failing = [run2(request(3, 2, 0)), run2(request(4, 2, 0))]
  const results = await Promise.allSettled([lone, ...failing])
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'rejected'])
})

test('only models with a dynamic first dimension everywhere are batched', () => {
  assert.equal(canBatch([{ name: 'x', datatype: 'FP32', shape: [-1, 3] }], [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }]), true)
  assert.equal(canBatch([{ name: 'x', datatype: 'FP32', shape: [1, 3] }], [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }]), false)
  assert.equal(canBatch([{ name: 'x', datatype: 'FP32', shape: [-1, 3] }], [{ name: 'y', datatype: 'FP32', shape: [] }]), false)
})

test('with concurrency 2, a second batch runs beside the first (one per model thread), never a third', async () => {
  let running = 0
  let most = 0
  const sizes: number[] = []
  const gates: (() => void)[] = []
  const model = async (inputs: readonly InputTensor[]): Promise<OutputTensor[]> => {
    const rows = inputs[0]!.shape[0]!
    sizes.push(rows)
    running++
    most = Math.max(most, running)
    await new Promise<void>((resolve) => gates.push(resolve))
    running--
    return [{ name: 'y', datatype: 'FP32', shape: [rows, 1], data: new Float32Array(rows) }]
  }
  const run = createBatcher(model, { maxBatch: 4, concurrency: 2 })
  // 12 one-row requests at once: a batch of 4 starts, a second of 4 beside it, the last 4 wait.
  const answers = Promise.all(Array.from({ length: 12 }, () => run(request(1, 2, 0))))
  const deadline = Date.now() + 5000
  while (sizes.length < 2 && Date.now() < deadline) await new Promise((r) => setImmediate(r))
  assert.deepEqual(sizes, [4, 4])
  assert.equal(running, 2)
  while (gates.length > 0 || sizes.length < 3) {
    gates.shift()?.()
    await new Promise((r) => setImmediate(r))
    if (Date.now() > deadline) throw new Error('the batches did not finish')
  }
  await answers
  assert.deepEqual(sizes, [4, 4, 4])
  assert.equal(most, 2)
})
