/**
 * ONNX Runtime sessions, one per loaded model version. onnxruntime-node (a native addon of some
 * tens of megabytes) is imported on the first load, never by the modules that merely import this one.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-node'
import type { Datatype, InputTensor, OutputTensor, TensorSpec } from './protocol.ts'

type Ort = typeof import('onnxruntime-node')
let ortModule: Promise<Ort> | undefined
const loadOrt = (): Promise<Ort> => (ortModule ??= import('onnxruntime-node'))

const FROM_ORT: Readonly<Record<string, Datatype>> = {
  bool: 'BOOL',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  float32: 'FP32',
  float64: 'FP64',
  string: 'BYTES',
}
const TO_ORT: Readonly<Record<Datatype, Tensor.Type>> = {
  BOOL: 'bool',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
}

export interface OnnxModel {
  inputs: TensorSpec[]
  outputs: TensorSpec[]
  /** Runs the model; the outputs in the model's order. */
  run(inputs: readonly InputTensor[]): Promise<OutputTensor[]>
  release(): Promise<void>
}

export interface OnnxLoadOptions {
  /** Threads one run may use. @default 1 (requests run side by side; a small model gains nothing from more) */
  threads?: number
}

/** Loads a model file; rejects with a readable message when ONNX Runtime cannot, or a tensor's type is not served. */
export async function loadOnnxModel(file: string, options: OnnxLoadOptions = {}): Promise<OnnxModel> {
  const ort = await loadOrt()
  const threads = options.threads ?? 1
  const session: InferenceSession = await ort.InferenceSession.create(file, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  })
  let inputs: TensorSpec[]
  let outputs: TensorSpec[]
  try {
    inputs = session.inputMetadata.map((m) => specOf(m, 'input'))
    outputs = session.outputMetadata.map((m) => specOf(m, 'output'))
  } catch (error) {
    await session.release()
    throw error
  }
  const outputNames = outputs.map((o) => o.name)
  return {
    inputs,
    outputs,
    async run(given) {
      const feeds: Record<string, Tensor> = {}
      for (const t of given) feeds[t.name] = new ort.Tensor(TO_ORT[t.datatype], t.data as Float32Array, t.shape)
      const result = await session.run(feeds)
      return outputNames.map((name, i) => {
        const tensor = result[name]!
        return { name, datatype: outputs[i]!.datatype, shape: tensor.dims.map(Number), data: tensor.data as OutputTensor['data'] }
      })
    },
    release: () => session.release(),
  }
}

function specOf(m: InferenceSession.ValueMetadata, kind: string): TensorSpec {
  if (!m.isTensor) throw new Error(`${kind} ${JSON.stringify(m.name)} is not a tensor (sequences and maps are not served)`)
  const datatype = FROM_ORT[m.type]
  if (!datatype) throw new Error(`${kind} ${JSON.stringify(m.name)} has type ${m.type}, which the server does not serve`)
  return { name: m.name, datatype, shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) }
}
