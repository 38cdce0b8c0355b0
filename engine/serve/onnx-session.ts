/**
 * ONNX Runtime sessions, one per loaded model version (and one per model thread of it, onnx-threads.ts).
 * onnxruntime-node (a native addon of some tens of megabytes) is imported on the first load, never by
 * the modules that merely import this one.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-node'
import { startModelThreads } from './onnx-threads.ts'
import type { WireFeed } from './onnx-worker.ts'
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
  /**
   * Runs the model; the outputs in the model's order. The inputs' typed arrays may be handed to a
   * model thread (transferred): the caller must not read them after the call.
   */
  run(inputs: readonly InputTensor[], options?: RunOptions): Promise<OutputTensor[]>
  release(): Promise<void>
}

export interface RunOptions {
  /**
   * Other requests are in progress in this process: a dear run is worth handing to a model thread,
   * so that their HTTP work goes on meanwhile. Without it a run stays on the event loop, which has
   * nothing else to do (and a thread would only add its hand-over to the answer's latency).
   */
  overlap?: boolean
}

export interface OnnxLoadOptions {
  /** Threads one run may use. @default 1 (requests run side by side; a small model gains nothing from more) */
  intraOpThreads?: number
  /** Model threads of the version (onnx-threads.ts); 0: every run on the event loop. @default 0 */
  threads?: number
  /**
   * With threads: a run expected to take less than this (ms, measured on the threads by number of
   * rows) runs on the event loop, where it costs less than handing it to a thread; so does every run
   * without RunOptions.overlap. @default 0.05
   */
  inlineBelowMs?: number
  /** Told when a model thread stops unexpectedly. */
  onThreadStop?: (why: string, restarted: boolean) => void
}

/** One run in this many of those expected to be cheap still goes to a thread, to keep the estimate true. */
const RESAMPLE = 64

/**
 * Loads a model file; rejects with a readable message when ONNX Runtime cannot, or a tensor's type is
 * not served. The session on this thread answers the metadata and the cheap runs; with `threads`, the
 * model threads take the runs that cost more than handing them over (see OnnxLoadOptions).
 */
export async function loadOnnxModel(file: string, options: OnnxLoadOptions = {}): Promise<OnnxModel> {
  const ort = await loadOrt()
  const intraOp = options.intraOpThreads ?? 1
  const session: InferenceSession = await ort.InferenceSession.create(file, {
    intraOpNumThreads: intraOp,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  })
  let inputs: TensorSpec[]
  let outputs: TensorSpec[]
  try {
    inputs = session.inputMetadata.map((m) => specOf(m, 'input'))
    // An output that is not a tensor (a ZipMap of class probabilities, as scikit-learn's exporter adds
    // beside the probability tensor) has no form in the protocol: it is neither computed nor shown.
    outputs = session.outputMetadata.filter((m) => m.isTensor).map((m) => specOf(m, 'output'))
    if (outputs.length === 0) throw new Error('the model has no tensor output to serve')
  } catch (error) {
    await session.release()
    throw error
  }
  const outputNames = outputs.map((o) => o.name)
  const runHere = async (given: readonly InputTensor[]): Promise<OutputTensor[]> => {
    const feeds: Record<string, Tensor> = {}
    for (const t of given) feeds[t.name] = new ort.Tensor(TO_ORT[t.datatype], t.data as Float32Array, t.shape)
    const result = await session.run(feeds, outputNames)
    return outputNames.map((name, i) => {
      const tensor = result[name]!
      return { name, datatype: outputs[i]!.datatype, shape: tensor.dims.map(Number), data: tensor.data as OutputTensor['data'] }
    })
  }
  const count = options.threads ?? 0
  if (count <= 0) return { inputs, outputs, run: runHere, release: () => session.release() }

  const threads = startModelThreads(file, { count, intraOp, ...(options.onThreadStop ? { onStop: options.onThreadStop } : {}) })
  const inlineBelowMs = options.inlineBelowMs ?? 0.05
  // Expected run time (ms) by number of rows, in powers of two: bucket b holds 2^(b-1) .. 2^b - 1 rows.
  const expected = new Float64Array(33).fill(Number.NaN)
  const cheapRuns = new Uint32Array(33)
  const runThere = async (given: readonly InputTensor[], bucket: number): Promise<OutputTensor[]> => {
    const transfer: ArrayBuffer[] = []
    const feeds = given.map((t): WireFeed => {
      const data = t.data
      if (ArrayBuffer.isView(data) && data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && !transfer.includes(data.buffer)) transfer.push(data.buffer)
      return [t.name, TO_ORT[t.datatype], t.shape, data as Tensor.DataType]
    })
    const { ms, outputs: got } = await threads.run(feeds, transfer)
    const before = expected[bucket]!
    expected[bucket] = Number.isNaN(before) ? ms : before * 0.8 + ms * 0.2
    return outputNames.map((name, i) => ({ name, datatype: outputs[i]!.datatype, shape: got[i]![0], data: got[i]![1] as OutputTensor['data'] }))
  }
  return {
    inputs,
    outputs,
    run(given, runOptions) {
      const rows = given[0]?.shape[0] ?? 1
      const bucket = Math.min(32, 32 - Math.clz32(rows))
      if (runOptions?.overlap === true && threads.ready()) {
        const cost = expected[bucket]!
        // Unknown or dear: on a thread. Cheap: here, but now and then on a thread to measure again.
        if (!(cost < inlineBelowMs) || ++cheapRuns[bucket]! % RESAMPLE === 0) return runThere(given, bucket)
      }
      return runHere(given)
    },
    async release() {
      await threads.close()
      await session.release()
    },
  }
}

function specOf(m: InferenceSession.ValueMetadata, kind: string): TensorSpec {
  if (!m.isTensor) throw new Error(`${kind} ${JSON.stringify(m.name)} is not a tensor (sequences and maps are not served)`)
  const datatype = FROM_ORT[m.type]
  if (!datatype) throw new Error(`${kind} ${JSON.stringify(m.name)} has type ${m.type}, which the server does not serve`)
  return { name: m.name, datatype, shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) }
}
