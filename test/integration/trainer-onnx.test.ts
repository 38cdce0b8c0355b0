/**
 * The exported ONNX file against the TF.js model it came from: onnxruntime-node (with all graph
 * optimizations, which also runs its model checks) loads it, and its outputs on 1,000 raw rows equal
 * the TF.js outputs to 1e-5 for every task. There is no ONNX checker in JS; `checkOnnx` covers the
 * structural part (names defined before use, initializer sizes, outputs produced) and ORT the rest. Where a
 * Python with the `onnx` package is at hand (CAIRN_ONNX_PYTHON, else python3; `.ci/run` installs one when it
 * can), the official checker also runs on every model: `onnx.checker.check_model(full_check=True)` and strict
 * shape inference.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
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

const CHECKER = `import sys, onnx
from onnx import checker, shape_inference
for path in sys.argv[1:]:
    model = onnx.load(path)
    checker.check_model(model, full_check=True)
    shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    print('checked', path)
`
const run = promisify(execFile)

/** A Python that imports `onnx`, or why there is none. */
async function onnxPython(): Promise<{ python?: string; why?: string }> {
  const python = process.env.CAIRN_ONNX_PYTHON || 'python3'
  try {
    await run(python, ['-c', 'import onnx'], { timeout: 60_000 })
    return { python }
  } catch (error) {
    return { why: `${python} cannot import onnx (${(error as Error).message.split('\n')[0]})` }
  }
}

const exported: { name: string; onnx: Uint8Array }[] = []

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
    exported.push({ name: `${task}-${kind}`, onnx: result.onnx })
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

test('the official ONNX checker (full check, strict shape inference) accepts every exported model', async (t) => {
  assert.equal(exported.length, cases.length, 'the models above were exported')
  const { python, why } = await onnxPython()
  if (!python) {
    t.skip(`the official checker is not installed here: ${why}`)
    return
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-onnx-check-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const files = await Promise.all(exported.map(async ({ name, onnx }) => {
    const file = path.join(dir, `${name}.onnx`)
    await writeFile(file, onnx)
    return file
  }))
  const { stdout } = await run(python, ['-c', CHECKER, ...files], { timeout: 120_000 })
  t.diagnostic(stdout.trim())
  assert.equal(stdout.trim().split('\n').length, files.length)
  // The checker can fail: a node reading a name nothing defines is refused.
  const broken = onnxProto.onnx.ModelProto.decode(exported[0]!.onnx)
  const first = broken.graph!.node![0]!
  first.input![0] = 'nowhere'
  const brokenFile = path.join(dir, 'broken.onnx')
  await writeFile(brokenFile, onnxProto.onnx.ModelProto.encode(broken).finish())
  await assert.rejects(run(python, ['-c', CHECKER, brokenFile], { timeout: 120_000 }), /nowhere/)
})
