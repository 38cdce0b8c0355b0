/**
 * One model thread (onnx-threads.ts): an ONNX Runtime session of one model version on its own
 * worker thread, so that a run does not hold the event loop that reads and answers HTTP requests.
 * onnxruntime-node runs a session synchronously on the thread that calls it; here that thread is
 * this one. Runs are taken in the order they arrive; typed arrays come and go by transfer.
 */
import { parentPort, workerData } from 'node:worker_threads'
import * as ort from 'onnxruntime-node'

/** What the thread is started with. */
export interface ThreadData {
  file: string
  /** intraOpNumThreads of the session. */
  intraOp: number
}

/** One input: [name, ONNX Runtime type, dims, data]. */
export type WireFeed = [string, ort.Tensor.Type, number[], ort.Tensor.DataType]

/**
 * Main thread -> model thread: a run, or stop (after the runs before it; a thread is never terminated
 * from outside, which would abort the process if it came during a native run).
 */
export type MainMessage = { kind: 'run'; id: number; feeds: WireFeed[] } | { kind: 'stop' }

/** Model thread -> main thread. */
export type ThreadMessage =
  | { kind: 'ready' }
  | { kind: 'failed'; error: string }
  /** `outputs`: [dims, data] in the model's output order; `ms`: the run alone, measured here. */
  | { kind: 'done'; id: number; ms: number; outputs: [number[], ort.Tensor.DataType][] }
  | { kind: 'error'; id: number; error: string }

const port = parentPort!
const data = workerData as ThreadData
const send = (message: ThreadMessage, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer)

// The thread ends when nothing is left to do: after a failed load (no listener), or once stopped
// (the port closed). Never process.exit(): it runs the process's exit handlers.
let session: ort.InferenceSession | undefined
try {
  session = await ort.InferenceSession.create(data.file, { intraOpNumThreads: data.intraOp, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' })
} catch (error) {
  send({ kind: 'failed', error: error instanceof Error ? error.message : String(error) })
}
if (session) serve(session)

function serve(session: ort.InferenceSession): void {
  // The tensor outputs only, as onnx-session.ts serves them (ONNX Runtime cannot return the others).
  const outputNames = session.outputMetadata.filter((m) => m.isTensor).map((m) => m.name)
  let stopping = false
  port.on('message', (message: MainMessage) => {
    if (message.kind === 'run') {
      if (!stopping) void run(session, outputNames, message)
    } else if (message.kind === 'stop') {
      stopping = true
      port.close()
      void session.release()
    }
    // Anything else is a bug on the other side: the thread stops with it (and is replaced).
    else throw new Error(`the model thread got a message it does not know: ${JSON.stringify(message)}`)
  })
  send({ kind: 'ready' })
}

async function run(session: ort.InferenceSession, outputNames: readonly string[], message: Extract<MainMessage, { kind: 'run' }>): Promise<void> {
  const feeds: Record<string, ort.Tensor> = {}
  try {
    for (const [name, type, dims, values] of message.feeds) feeds[name] = new ort.Tensor(type, values as Float32Array, dims)
    const started = performance.now()
    const result = await session.run(feeds, outputNames)
    const ms = performance.now() - started
    const transfer: ArrayBuffer[] = []
    const outputs = outputNames.map((name): [number[], ort.Tensor.DataType] => {
      const tensor = result[name]!
      const values = tensor.data
      if (ArrayBuffer.isView(values) && values.buffer instanceof ArrayBuffer && !transfer.includes(values.buffer)) transfer.push(values.buffer)
      return [tensor.dims.map(Number), values]
    })
    try {
      send({ kind: 'done', id: message.id, ms, outputs }, transfer)
    } catch {
      // A buffer that cannot be moved (one ONNX Runtime keeps): copied instead.
      send({ kind: 'done', id: message.id, ms, outputs })
    }
  } catch (error) {
    send({ kind: 'error', id: message.id, error: error instanceof Error ? error.message : String(error) })
  }
}
