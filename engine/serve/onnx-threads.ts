/**
 * The model threads of one loaded version: `count` worker threads, each with its own ONNX Runtime
 * session of the version's file (onnx-worker.ts). A run goes to the ready thread with the fewest
 * runs waiting; its typed arrays are transferred both ways, not copied.
 *
 * A thread that stops (an uncaught error, out of memory, terminated) fails the runs it had with a
 * message that says so, and a new thread is started in its place. A thread that stops before it is
 * ready (it cannot load the model) is not started again: the version then runs on the event loop
 * (ready() is false). close() asks every thread to stop after its current run (terminating a thread
 * inside a native run would abort the process) and waits for it; runs still waiting fail.
 */
import { Worker } from 'node:worker_threads'
import type { Tensor } from 'onnxruntime-node'
import type { MainMessage, ThreadData, ThreadMessage, WireFeed } from './onnx-worker.ts'

const WORKER_URL = new URL('./onnx-worker.ts', import.meta.url)

export interface ThreadRun {
  /** The run alone, measured on the thread (ms). */
  ms: number
  /** [dims, data] in the model's output order. */
  outputs: [number[], Tensor.DataType][]
}

export interface ModelThreads {
  /** Whether a thread can take a run now (one is started and ready). */
  ready(): boolean
  /** Runs on a thread; the buffers in `transfer` are moved there (the caller must not use them after). */
  run(feeds: WireFeed[], transfer: ArrayBuffer[]): Promise<ThreadRun>
  /** Threads running now (started, not yet exited). */
  size(): number
  close(): Promise<void>
}

export interface ModelThreadsOptions {
  count: number
  /** intraOpNumThreads of each thread's session. @default 1 */
  intraOp?: number
  /** Told when a thread stops unexpectedly (`restarted`: a new one is starting). */
  onStop?: (why: string, restarted: boolean) => void
}

interface Slot {
  worker: Worker
  ready: boolean
  pending: Map<number, { resolve(run: ThreadRun): void; reject(error: Error): void }>
  why?: string
}

const everySlot = new Set<Slot>()

/**
 * The model threads running in this process, over every version, each with the runs it has not
 * answered yet (diagnostics; tests check that unloading stops them and stop one to see it replaced).
 */
export function modelThreads(): { worker: Worker; ready: boolean; waiting: number }[] {
  return [...everySlot].map((slot) => ({ worker: slot.worker, ready: slot.ready, waiting: slot.pending.size }))
}

function settled(slot: Slot, id: number): void {
  if (slot.pending.delete(id) && slot.pending.size === 0) slot.worker.unref()
}

export function startModelThreads(file: string, options: ModelThreadsOptions): ModelThreads {
  const slots = new Set<Slot>()
  let nextId = 1
  let closed = false
  let broken = false
  const data: ThreadData = { file, intraOp: options.intraOp ?? 1 }

  const spawn = (): void => {
    const worker = new Worker(WORKER_URL, { workerData: data })
    // Referenced while someone waits for it (runs, stopping), so that the process does not see an
    // empty event loop meanwhile; unreferenced while idle.
    worker.unref()
    const slot: Slot = { worker, ready: false, pending: new Map() }
    slots.add(slot)
    everySlot.add(slot)
    worker.on('message', (message: ThreadMessage) => {
      switch (message.kind) {
        case 'ready':
          slot.ready = true
          return
        case 'failed':
          slot.why = `it cannot load the model: ${message.error}`
          return
        case 'done': {
          const p = slot.pending.get(message.id)
          settled(slot, message.id)
          p?.resolve({ ms: message.ms, outputs: message.outputs })
          return
        }
        case 'error': {
          const p = slot.pending.get(message.id)
          settled(slot, message.id)
          p?.reject(new Error(message.error))
        }
      }
    })
    worker.on('error', (error: Error & { code?: string }) => {
      slot.why = error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'it ran out of memory' : error.message
    })
    worker.on('exit', (code) => {
      everySlot.delete(slot)
      slots.delete(slot)
      if (closed) return
      const why = slot.why ?? `it exited with code ${code}`
      for (const p of slot.pending.values()) p.reject(new Error(`the model's thread stopped before it answered (${why})`))
      slot.pending.clear()
      // A thread that never became ready cannot load the model at all: starting it again would loop.
      const restart = slot.ready
      if (!restart) broken = true
      options.onStop?.(why, restart)
      if (restart) spawn()
    })
  }

  for (let i = 0; i < Math.max(1, options.count); i++) spawn()

  return {
    ready() {
      if (broken || closed) return false
      for (const slot of slots) if (slot.ready) return true
      return false
    },
    run(feeds, transfer) {
      let best: Slot | undefined
      for (const slot of slots) if (slot.ready && (!best || slot.pending.size < best.pending.size)) best = slot
      if (!best) return Promise.reject(new Error('no model thread is ready'))
      const id = nextId++
      const slot = best
      return new Promise<ThreadRun>((resolve, reject) => {
        if (slot.pending.size === 0) slot.worker.ref()
        slot.pending.set(id, { resolve, reject })
        const message: MainMessage = { kind: 'run', id, feeds }
        try {
          try {
            slot.worker.postMessage(message, transfer)
          } catch {
            // A buffer that cannot be moved: copied instead.
            slot.worker.postMessage(message)
          }
        } catch (error) {
          settled(slot, id)
          reject(error instanceof Error ? error : new Error(String(error)))
        }
      })
    },
    size: () => slots.size,
    async close() {
      closed = true
      const all = [...slots]
      for (const slot of all) {
        for (const p of slot.pending.values()) p.reject(new Error('the model version was unloaded before the run ended'))
        slot.pending.clear()
      }
      // Asked to stop after its current run, never terminated: see onnx-worker.ts.
      await Promise.all(
        all.map(async (slot) => {
          const exited = new Promise((resolve) => slot.worker.once('exit', resolve))
          slot.worker.ref()
          slot.worker.postMessage({ kind: 'stop' } satisfies MainMessage)
          await exited
        }),
      )
    },
  }
}
