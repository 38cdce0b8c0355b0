/**
 * Writes a trained model as ONNX (IR version 8, opset 13, both read by onnxruntime 1.x) with the
 * `onnx-proto` schema: input `input` [N, F] FP32 of raw feature values -> Sub(mean) -> Div(std) ->
 * Gemm (+ Relu) per layer -> Sigmoid | Softmax | nothing -> output `output` [N, 1] or [N, K].
 * Standardization lives in the graph so that a consumer feeds the dataset's columns as they are.
 */
import onnxProto from 'onnx-proto'
import type { Task } from './data.ts'

const { onnx } = onnxProto

export interface ExportInput {
  task: Task
  features: string[]
  mean: Float32Array
  std: Float32Array
  layers: { kernel: Float32Array; bias: Float32Array; shape: [number, number] }[]
  /** Stored as metadata_props (e.g. classes, label). */
  metadata?: Record<string, string>
}

export const ONNX_IR_VERSION = 8
export const ONNX_OPSET = 13

function tensor(name: string, dims: number[], values: Float32Array) {
  return onnx.TensorProto.create({
    name,
    dims,
    dataType: onnx.TensorProto.DataType.FLOAT,
    rawData: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)),
  })
}

function valueInfo(name: string, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  })
}

export function exportOnnx(input: ExportInput): Uint8Array {
  if (new DataView(new Uint16Array([1]).buffer).getUint8(0) !== 1) throw new Error('ONNX raw_data is little-endian; this machine is not')
  const f = input.features.length
  const outputs = input.layers.at(-1)!.shape[1]
  const initializer = [tensor('mean', [f], input.mean), tensor('std', [f], input.std)]
  const node = [
    onnx.NodeProto.create({ opType: 'Sub', input: ['input', 'mean'], output: ['centered'], name: 'standardize_sub' }),
    onnx.NodeProto.create({ opType: 'Div', input: ['centered', 'std'], output: ['h0'], name: 'standardize_div' }),
  ]
  let current = 'h0'
  input.layers.forEach((layer, l) => {
    initializer.push(tensor(`W${l}`, layer.shape, layer.kernel), tensor(`B${l}`, [layer.shape[1]], layer.bias))
    const z = `z${l}`
    node.push(onnx.NodeProto.create({ opType: 'Gemm', input: [current, `W${l}`, `B${l}`], output: [z], name: `dense${l}` }))
    current = z
    if (l + 1 < input.layers.length) {
      node.push(onnx.NodeProto.create({ opType: 'Relu', input: [z], output: [`h${l + 1}`], name: `relu${l}` }))
      current = `h${l + 1}`
    }
  })
  if (input.task === 'binary') node.push(onnx.NodeProto.create({ opType: 'Sigmoid', input: [current], output: ['output'], name: 'sigmoid' }))
  else if (input.task === 'multiclass') {
    node.push(
      onnx.NodeProto.create({
        opType: 'Softmax',
        input: [current],
        output: ['output'],
        name: 'softmax',
        attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 })],
      }),
    )
  } else node.push(onnx.NodeProto.create({ opType: 'Identity', input: [current], output: ['output'], name: 'value' }))

  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'cairn-train',
    producerVersion: '1',
    graph: {
      name: 'cairn_model',
      node,
      initializer,
      input: [valueInfo('input', ['N', f])],
      output: [valueInfo('output', ['N', outputs])],
      docString: `inputs: ${input.features.join(', ')}`,
    },
    metadataProps: Object.entries({ features: JSON.stringify(input.features), task: input.task, ...input.metadata }).map(([key, value]) => ({ key, value })),
  })
  return onnx.ModelProto.encode(model).finish()
}

/**
 * Structural checks of an exported graph, the part of the ONNX checker that applies to it: every node
 * input is a graph input, an initializer or an earlier node's output (topological order), names are
 * unique, initializer sizes match their dims, the output is produced.
 */
export function checkOnnx(bytes: Uint8Array): string[] {
  const problems: string[] = []
  const model = onnx.ModelProto.decode(bytes)
  if (!model.graph) return ['no graph']
  // Decoded messages carry every repeated field (empty when absent), as the generated classes declare.
  const graph = model.graph as InstanceType<typeof onnx.GraphProto>
  if (Number(model.irVersion) !== ONNX_IR_VERSION) problems.push(`ir_version ${model.irVersion}`)
  const known = new Set<string>()
  for (const i of graph.input) known.add(i.name ?? '')
  for (const t of graph.initializer as InstanceType<typeof onnx.TensorProto>[]) {
    if (known.has(t.name)) problems.push(`duplicate name ${t.name}`)
    known.add(t.name)
    const count = t.dims.reduce((n: number, d) => n * Number(d), 1)
    if (t.rawData.length !== count * 4) problems.push(`initializer ${t.name}: ${t.rawData.length} bytes for dims [${t.dims.join(', ')}]`)
  }
  for (const n of graph.node as InstanceType<typeof onnx.NodeProto>[]) {
    for (const i of n.input) if (!known.has(i)) problems.push(`node ${n.name}: input ${i} is not defined before it`)
    for (const o of n.output) {
      if (known.has(o)) problems.push(`node ${n.name}: output ${o} is defined twice`)
      known.add(o)
    }
  }
  for (const o of graph.output) if (!known.has(o.name ?? '')) problems.push(`graph output ${o.name} is not produced`)
  return problems
}
