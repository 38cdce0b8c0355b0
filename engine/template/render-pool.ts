/**
 * Renders a task's templates on a small pool of worker threads, so a hostile template costs a
 * thread, never the event loop that answers /healthz, heartbeats and the API. Each task has one
 * budget (render.ts); the pool enforces it from outside too: a thread that has not answered within
 * the budget plus a grace period is terminated and replaced, and so is one that runs out of its
 * heap. Either way the task fails as `invalid_params` (a template problem, not retryable).
 *
 * Threads are started on first use and reused; an idle one does not keep the process alive.
 */
import { availableParallelism } from 'node:os'
import { MessageChannel, Worker } from 'node:worker_threads'
import { DEFAULT_RENDER_BUDGET, budgetExceededMessage } from './render.ts'
import type { RenderBudget, RenderResult, TaskTemplates, TemplateVariables } from './render.ts'
import type { RenderJob, SecretAnswer, WorkerMessage } from './render-worker.ts'

export interface RenderPoolOptions {
  /** Threads rendering at once. @default 2 (1 on a one-core machine) */
  size?: number
  /** One task's templates together. @default 2000 ms, 16 Mi characters */
  budget?: RenderBudget
  /** Heap of one rendering thread, in MiB. @default 128 */
  heapMb?: number
  /** How long past the budget a thread may stay silent before it is terminated. @default 1000 */
  graceMs?: number
}

export interface RenderPool {
  render(templates: TaskTemplates, variables: TemplateVariables): Promise<RenderResult>
  /** Terminates every thread; renders still waiting fail. */
  close(): Promise<void>
}

const WORKER_URL = new URL('./render-worker.ts', import.meta.url)

interface Pending {
  templates: TaskTemplates
  variables: TemplateVariables
  resolve: (result: RenderResult) => void
  reject: (error: Error) => void
}

interface Slot {
  worker: Worker
  ready: boolean
  /** The job it renders now, with what ends it. */
  job?: { id: number; finish: (result: RenderResult) => void; handedOut: Set<string> }
}

export function createRenderPool(options: RenderPoolOptions = {}): RenderPool {
  const size = Math.max(1, options.size ?? Math.min(2, availableParallelism()))
  const budget = options.budget ?? DEFAULT_RENDER_BUDGET
  const heapMb = options.heapMb ?? 128
  const graceMs = options.graceMs ?? 1000
  const slots = new Set<Slot>()
  const queue: Pending[] = []
  let nextId = 1
  let closed = false

  const spawn = (): void => {
    const worker = new Worker(WORKER_URL, { resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 } })
    const slot: Slot = { worker, ready: false }
    slots.add(slot)
    // Referenced while starting or rendering (someone waits for it), unreferenced while idle.
    worker.on('message', (message: WorkerMessage) => {
      if (message.kind === 'ready') {
        slot.ready = true
        worker.unref()
      } else if (slot.job?.id === message.id) slot.job.finish(message.result)
      dispatch()
    })
    const gone = (why: string): void => {
      if (!slots.delete(slot)) return
      slot.job?.finish({ ok: false, message: why, secretValues: [] })
      // A thread that died before it was ready cannot start at all (a broken install): say so to
      // whoever waits instead of starting threads in a loop.
      if (!slot.ready) for (const pending of queue.splice(0)) pending.reject(new Error(`the template rendering thread could not start: ${why}`))
      dispatch()
    }
    worker.on('error', (error: Error & { code?: string }) =>
      gone(error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `rendering the task's templates needed more than the ${heapMb} MiB memory budget` : `rendering failed: ${error.message}`),
    )
    worker.on('exit', () => gone('the rendering thread stopped before it finished'))
  }

  const dispatch = (): void => {
    if (closed) return
    for (const slot of slots) {
      if (queue.length === 0) return
      if (slot.ready && !slot.job) start(slot, queue.shift()!)
    }
    // Threads are started lazily, up to the pool size, only while work waits.
    const starting = [...slots].filter((s) => !s.ready).length
    if (queue.length > starting && slots.size < size) spawn()
  }

  const start = (slot: Slot, pending: Pending): void => {
    const id = nextId++
    const channel = new MessageChannel()
    const ready = new SharedArrayBuffer(4)
    const flag = new Int32Array(ready)
    const handedOut = new Set<string>()
    channel.port1.on('message', (name: string) => {
      let answer: SecretAnswer
      try {
        const value = pending.variables.secrets.get(name)
        if (value !== undefined) handedOut.add(value)
        answer = { value }
      } catch (error) {
        answer = { error: error instanceof Error ? error.message : String(error) }
      }
      channel.port1.postMessage(answer)
      Atomics.store(flag, 0, 1)
      Atomics.notify(flag, 0)
    })
    const timer = setTimeout(() => {
      // The thread did not stop itself within the budget: it is stuck inside one operation.
      finish({ ok: false, message: `${budgetExceededMessage(budget)}; the rendering thread was stopped`, secretValues: [] })
      slots.delete(slot)
      void slot.worker.terminate()
      dispatch()
    }, budget.timeMs + graceMs)
    const finish = (result: RenderResult): void => {
      if (slot.job?.id !== id) return
      clearTimeout(timer)
      channel.port1.close()
      slot.job = undefined
      slot.worker.unref()
      // Every value handed to the thread is masked, also when the thread never reported back.
      pending.resolve({ ...result, secretValues: [...new Set([...result.secretValues, ...handedOut])] })
    }
    slot.job = { id, finish, handedOut }
    slot.worker.ref()
    const { secrets: _secrets, ...variables } = pending.variables
    const job: RenderJob = { id, templates: pending.templates, variables, budget, secrets: channel.port2, ready }
    try {
      slot.worker.postMessage(job, [channel.port2])
    } catch (error) {
      // A value that cannot be copied to the thread (never the case for data read from JSON).
      finish({ ok: false, message: `rendering failed: ${error instanceof Error ? error.message : String(error)}`, secretValues: [] })
    }
  }

  return {
    render(templates, variables) {
      if (closed) return Promise.reject(new Error('the render pool is closed'))
      return new Promise<RenderResult>((resolve, reject) => {
        queue.push({ templates, variables, resolve, reject })
        dispatch()
      })
    },
    async close() {
      closed = true
      for (const pending of queue.splice(0)) pending.reject(new Error('the render pool is closed'))
      const busy = [...slots]
      slots.clear()
      for (const slot of busy) slot.job?.finish({ ok: false, message: 'the worker stopped while rendering', secretValues: [] })
      const workers = busy.map((s) => s.worker)
      await Promise.all(workers.map((w) => w.terminate()))
    },
  }
}

let shared: RenderPool | undefined

/** The process's pool, started on first use. */
export function sharedRenderPool(): RenderPool {
  shared ??= createRenderPool()
  return shared
}
