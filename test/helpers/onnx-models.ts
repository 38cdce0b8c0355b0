/**
 * Small ONNX models made outside cairn's trainer, from known weights with `onnx-proto`, so that a test
 * can compute every prediction itself: input `x` FP32 [N, F] -> MatMul(W) -> Add(b) -> then
 *
 *   logistic       Sigmoid                      output [N, 1]  positive-class probability
 *   logistic2      Sigmoid, Concat(1 - p, p)    output [N, 2]  binary as two class probabilities
 *   softmax        Softmax(axis 1)              output [N, K]  class probabilities
 *   linear         Reshape to [N]               output [N]     a value per row
 *
 * and the plain-JS forward passes that give the same numbers (in doubles; ONNX Runtime computes in
 * FP32, within ~1e-7).
 */
import { writeFileSync } from 'node:fs'
import onnxProto from 'onnx-proto'

const { onnx } = onnxProto

export type OnnxKind = 'logistic' | 'logistic2' | 'softmax' | 'linear'

export interface LinearWeights {
  /** [features][outputs], row-major by feature. */
  w: number[][]
  b: number[]
}

function floatTensor(name: string, dims: number[], values: number[]) {
  const data = new Float32Array(values)
  return onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(data.buffer) })
}

function valueInfo(name: string, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  })
}

/** The model's bytes; `metadata` goes into metadata_props (cairn reads `features` and `task` there). */
export function onnxModel(kind: OnnxKind, weights: LinearWeights, metadata: Record<string, string> = {}): Uint8Array {
  const f = weights.w.length
  const k = weights.b.length
  const initializer = [floatTensor('W', [f, k], weights.w.flat()), floatTensor('B', [k], weights.b)]
  const node = [
    onnx.NodeProto.create({ opType: 'MatMul', input: ['x', 'W'], output: ['xw'], name: 'matmul' }),
    onnx.NodeProto.create({ opType: 'Add', input: ['xw', 'B'], output: ['z'], name: 'add' }),
  ]
  let output = valueInfo('y', ['N', k])
  if (kind === 'logistic') node.push(onnx.NodeProto.create({ opType: 'Sigmoid', input: ['z'], output: ['y'], name: 'sigmoid' }))
  else if (kind === 'logistic2') {
    initializer.push(floatTensor('one', [1], [1]))
    node.push(
      onnx.NodeProto.create({ opType: 'Sigmoid', input: ['z'], output: ['p'], name: 'sigmoid' }),
      onnx.NodeProto.create({ opType: 'Sub', input: ['one', 'p'], output: ['q'], name: 'complement' }),
      onnx.NodeProto.create({ opType: 'Concat', input: ['q', 'p'], output: ['y'], name: 'concat', attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 })] }),
    )
    output = valueInfo('y', ['N', 2])
  } else if (kind === 'softmax') {
    node.push(onnx.NodeProto.create({ opType: 'Softmax', input: ['z'], output: ['y'], name: 'softmax', attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 })] }))
  } else {
    initializer.push(onnx.TensorProto.create({ name: 'flat', dims: [1], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(new BigInt64Array([-1n]).buffer) }))
    node.push(onnx.NodeProto.create({ opType: 'Reshape', input: ['z', 'flat'], output: ['y'], name: 'flatten' }))
    output = valueInfo('y', ['N'])
  }
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'test-onnx-models',
    graph: { name: kind, node, initializer, input: [valueInfo('x', ['N', f])], output: [output] },
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  })
  return onnx.ModelProto.encode(model).finish()
}

export function writeOnnxModel(file: string, kind: OnnxKind, weights: LinearWeights, metadata?: Record<string, string>): string {
  writeFileSync(file, onnxModel(kind, weights, metadata))
  return file
}

/** z = x W + b for one row. */
function affine(x: readonly number[], weights: LinearWeights): number[] {
  return weights.b.map((b, j) => x.reduce((sum, xi, i) => sum + xi * weights.w[i]![j]!, b))
}

/** What the model outputs for one row: [p] (logistic), [1 - p, p] (logistic2), K probabilities (softmax), [value] (linear). */
export function forward(kind: OnnxKind, x: readonly number[], weights: LinearWeights): number[] {
  const z = affine(x, weights)
  if (kind === 'linear') return z
  if (kind === 'softmax') {
    const max = Math.max(...z)
    const e = z.map((v) => Math.exp(v - max))
    const sum = e.reduce((a, b) => a + b, 0)
    return e.map((v) => v / sum)
  }
  const p = 1 / (1 + Math.exp(-z[0]!))
  return kind === 'logistic' ? [p] : [1 - p, p]
}
