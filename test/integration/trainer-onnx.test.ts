/**
 * The exported ONNX file against the TF.js model it came from: onnxruntime-node (with all graph
 * optimizations, which also runs its model checks) loads it, and its outputs on 1,000 raw rows equal
 * the TF.js outputs to 1e-5 for every task. There is no ONNX checker in JS; `checkOnnx` covers the
 * structural part (names defined before use, initializer sizes, outputs produced) and ORT the rest.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import onnxProto from 'onnx-proto'
import { writeTrainingSet } from '../helpers/train-data.ts'
import { train } from '../../engine/train/train.ts'
import type { TrainConfig } from '../../engine/train/train.ts'
import { readTable } from '../../engine/train/data.ts'
import { checkOnnx, ONNX_IR_VERSION, ONNX_OPSET } from '../../engine/train/onnx-export.ts'

const cases: { task: TrainConfig['task']; kind: 'mlp' | 'logistic'; outputs: number }[] = [
  { task: 'binary', kind: 'mlp', outputs: 1 },
  { task: 'binary', kind: 'logistic', outputs: 1 },
  { task: 'multiclass', kind: 'mlp', outputs: 3 },
  { task: 'regression', kind: 'mlp', outputs: 1 },
]

for (const { task, kind, outputs } of cases) {
  test(`${task} ${kind}: onnxruntime-node predictions equal TF.js predictions on 1,000 rows`, async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-onnx-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const { file } = await writeTrainingSet(dir, { rows: 3000, task, nulls: true })
    const config: TrainConfig = {
      files: [file],
      label: 'label',
      task,
      model: { kind, hidden: [16, 8] },
      epochs: 2,
      batchSize: 128,
      learningRate: 0.01,
      seed: 5,
      validationFraction: 0.2,
      rank: 0,
      worldSize: 1,
      masterAddr: '127.0.0.1',
      masterPort: 1,
      timeoutMs: 10_000,
      backend: 'wasm',
    }
    const result = await train(config, () => {})
    assert.ok(result.onnx && result.predict)
    assert.deepEqual(checkOnnx(result.onnx), [])
    const decoded = onnxProto.onnx.ModelProto.decode(result.onnx)
    assert.equal(Number(decoded.irVersion), ONNX_IR_VERSION)
    assert.equal(Number(decoded.opsetImport[0]!.version), ONNX_OPSET)

    // Raw rows as a consumer feeds them (nulls read as 0, no standardization: that is in the graph).
    const table = await readTable([file], 'label', task)
    const rows = 1000
    const features = table.features.length
    const raw = table.x.slice(0, rows * features)
    const expected = result.predict(raw, rows)

    const session = await ort.InferenceSession.create(result.onnx, { graphOptimizationLevel: 'all' })
    t.after(() => session.release())
    assert.deepEqual(session.inputNames, ['input'])
    assert.deepEqual(session.outputNames, ['output'])
    const out = await session.run({ input: new ort.Tensor('float32', raw, [rows, features]) })
    const output = out.output!
    assert.deepEqual(output.dims, [rows, outputs])
    const got = output.data as Float32Array
    let max = 0
    for (let i = 0; i < expected.length; i++) max = Math.max(max, Math.abs(got[i]! - expected[i]!))
    t.diagnostic(`max abs diff ONNX vs TF.js: ${max}`)
    assert.equal(got.length, expected.length)
    assert.ok(max <= 1e-5, `max abs diff ${max}`)
    // The outputs are meaningful, not all equal (a broken graph could still agree with itself).
    assert.ok(new Set(Array.from(got.slice(0, 50), (v) => v.toFixed(4))).size > 10)
  })
}
