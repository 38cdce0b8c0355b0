/**
 * The ONNX models of the rollout test and benchmark, built here with `onnx-proto` (outside cairn's
 * trainer): y = sigmoid(x W + b), input `x` FP32 [N, F], output `y` FP32 [N, 1]. A version with another
 * F than production's is a broken canary: every request valid for production has the wrong shape for it.
 */
import onnxProto from 'onnx-proto'

const { onnx } = onnxProto
const FLOAT = onnx.TensorProto.DataType.FLOAT

function valueInfo(name: string, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } } })
}

function tensor(name: string, dims: number[], values: readonly number[]) {
  return onnx.TensorProto.create({ name, dims, dataType: FLOAT, rawData: new Uint8Array(new Float32Array(values).buffer) })
}

export function sigmoidModel(weights: readonly number[], bias: number): Uint8Array {
  const f = weights.length
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'cairn-rollout-test',
    graph: {
      name: 'sigmoid',
      node: [
        onnx.NodeProto.create({ opType: 'Gemm', input: ['x', 'W', 'B'], output: ['z'], name: 'dense' }),
        onnx.NodeProto.create({ opType: 'Sigmoid', input: ['z'], output: ['y'], name: 'sigmoid' }),
      ],
      initializer: [tensor('W', [f, 1], weights), tensor('B', [1], [bias])],
      input: [valueInfo('x', ['N', f])],
      output: [valueInfo('y', ['N', 1])],
    },
  })).finish()
}
