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
 * FP32, within ~1e-7). Below, for the model server: `sigmoidModel` (Gemm + Sigmoid), `typedModel`
 * (INT64, FP64, BOOL and INT32 tensors), `bytesModel` (BYTES) and `mlpModel` (a heavier graph for the benchmark).
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

// ---- Models for the model server's tests and benchmark: typed tensors, and heavier graphs. ----

const T = onnx.TensorProto.DataType

type ElemType = 'FLOAT' | 'DOUBLE' | 'INT32' | 'INT64' | 'BOOL' | 'STRING'

function typedValueInfo(name: string, elem: ElemType, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: T[elem], shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  })
}

function rawFloatTensor(name: string, dims: number[], values: readonly number[]) {
  const data = new Float32Array(values)
  return onnx.TensorProto.create({ name, dims, dataType: T.FLOAT, rawData: new Uint8Array(data.buffer) })
}

function encodeModel(graph: { node: unknown[]; input: unknown[]; output: unknown[]; initializer?: unknown[] }, name: string): Uint8Array {
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      producerName: 'cairn-test',
      graph: { name, initializer: [], ...graph } as never,
    }),
  ).finish()
}

/** y = sigmoid(x W + b): input `x` FP32 [N, F], output `y` FP32 [N, 1]. */
export function sigmoidModel(weights: readonly number[], bias: number, options: { features?: number } = {}): Uint8Array {
  const f = options.features ?? weights.length
  return encodeModel(
    {
      node: [
        onnx.NodeProto.create({ opType: 'Gemm', input: ['x', 'W', 'B'], output: ['z'], name: 'dense' }),
        onnx.NodeProto.create({ opType: 'Sigmoid', input: ['z'], output: ['y'], name: 'sigmoid' }),
      ],
      initializer: [rawFloatTensor('W', [f, 1], weights), rawFloatTensor('B', [1], [bias])],
      input: [typedValueInfo('x', 'FLOAT', ['N', f])],
      output: [typedValueInfo('y', 'FLOAT', ['N', 1])],
    },
    'sigmoid',
  )
}

/** What sigmoidModel computes, row by row (rows flat, row-major). */
export function sigmoidReference(x: readonly number[], weights: readonly number[], bias: number): number[] {
  const f = weights.length
  const out: number[] = []
  for (let r = 0; r < x.length / f; r++) {
    let z = bias
    for (let j = 0; j < f; j++) z += x[r * f + j]! * weights[j]!
    out.push(1 / (1 + Math.exp(-z)))
  }
  return out
}

/**
 * Three typed inputs, three outputs: `ids` INT64 [N, 2] -> `ids_plus` = ids + 1 (INT64);
 * `values` FP64 [N, 3] -> `doubled` = values * 2 (FP64); `flags` BOOL [N] -> `negated` = not flags (BOOL);
 * `counts` INT32 [N] -> `counts_out` = counts (INT32).
 */
export function typedModel(): Uint8Array {
  const int64One = onnx.TensorProto.create({ name: 'one64', dims: [], dataType: T.INT64, int64Data: [1] })
  const two = onnx.TensorProto.create({ name: 'two', dims: [], dataType: T.DOUBLE, doubleData: [2] })
  return encodeModel(
    {
      node: [
        onnx.NodeProto.create({ opType: 'Add', input: ['ids', 'one64'], output: ['ids_plus'], name: 'add' }),
        onnx.NodeProto.create({ opType: 'Mul', input: ['values', 'two'], output: ['doubled'], name: 'mul' }),
        onnx.NodeProto.create({ opType: 'Not', input: ['flags'], output: ['negated'], name: 'not' }),
        onnx.NodeProto.create({ opType: 'Identity', input: ['counts'], output: ['counts_out'], name: 'identity' }),
      ],
      initializer: [int64One, two],
      input: [typedValueInfo('ids', 'INT64', ['N', 2]), typedValueInfo('values', 'DOUBLE', ['N', 3]), typedValueInfo('flags', 'BOOL', ['N']), typedValueInfo('counts', 'INT32', ['N'])],
      output: [typedValueInfo('ids_plus', 'INT64', ['N', 2]), typedValueInfo('doubled', 'DOUBLE', ['N', 3]), typedValueInfo('negated', 'BOOL', ['N']), typedValueInfo('counts_out', 'INT32', ['N'])],
    },
    'typed',
  )
}

/** `text` BYTES [N] -> `same` BYTES [N] (Identity): string tensors through the server. */
export function bytesModel(): Uint8Array {
  return encodeModel({ node: [onnx.NodeProto.create({ opType: 'Identity', input: ['text'], output: ['same'] })], input: [typedValueInfo('text', 'STRING', ['N'])], output: [typedValueInfo('same', 'STRING', ['N'])] }, 'bytes')
}

/**
 * A multi-layer perceptron with fixed pseudo-random weights (F -> H -> H -> 1, ReLU, sigmoid), heavy
 * enough that running it costs more than carrying the request: for the batching benchmark.
 */
export function mlpModel(features: number, hidden: number, seed = 1): Uint8Array {
  let s = seed >>> 0
  const random = () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5
  }
  const w = (n: number, scale: number) => Array.from({ length: n }, () => random() * scale)
  return encodeModel(
    {
      node: [
        onnx.NodeProto.create({ opType: 'Gemm', input: ['x', 'W0', 'B0'], output: ['z0'], name: 'd0' }),
        onnx.NodeProto.create({ opType: 'Relu', input: ['z0'], output: ['h0'], name: 'r0' }),
        onnx.NodeProto.create({ opType: 'Gemm', input: ['h0', 'W1', 'B1'], output: ['z1'], name: 'd1' }),
        onnx.NodeProto.create({ opType: 'Relu', input: ['z1'], output: ['h1'], name: 'r1' }),
        onnx.NodeProto.create({ opType: 'Gemm', input: ['h1', 'W2', 'B2'], output: ['z2'], name: 'd2' }),
        onnx.NodeProto.create({ opType: 'Sigmoid', input: ['z2'], output: ['y'], name: 's' }),
      ],
      initializer: [
        rawFloatTensor('W0', [features, hidden], w(features * hidden, 2 / Math.sqrt(features))),
        rawFloatTensor('B0', [hidden], w(hidden, 0.1)),
        rawFloatTensor('W1', [hidden, hidden], w(hidden * hidden, 2 / Math.sqrt(hidden))),
        rawFloatTensor('B1', [hidden], w(hidden, 0.1)),
        rawFloatTensor('W2', [hidden, 1], w(hidden, 2 / Math.sqrt(hidden))),
        rawFloatTensor('B2', [1], [0]),
      ],
      input: [typedValueInfo('x', 'FLOAT', ['N', features])],
      output: [typedValueInfo('y', 'FLOAT', ['N', 1])],
    },
    'mlp',
  )
}
