/**
 * Helper threads for validating many files (validate-folder.ts validateShared). A helper must load
 * and compile the validator before it can take a file, which costs about as much as validating a
 * hundred files, so `cairn validate` starts its helpers before it loads the validator itself
 * (prestartHelpers): both load at once, on different cores. A helper waits for its work (HelperData)
 * as a message; one nobody takes is stopped. This module is small on purpose: it is loaded first.
 */
import module from 'node:module'
import { availableParallelism, loadavg } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { FileSummary } from './validate-folder.ts'
import type { PlainDeploymentNames } from './dag-semantics.ts'

/** What a helper validates: files taken from the shared counter, `chunk` at a time; its state in `slot`. */
export interface HelperData {
  files: readonly string[]
  names: PlainDeploymentNames | undefined
  cwd: string
  shared: SharedArrayBuffer
  slot: number
  chunk: number
}

export interface Helper {
  /** Hands the helper its work; it answers once, with [index, summary] pairs. */
  start(data: HelperData): Promise<[number, FileSummary][]>
  stop(): void
}

/**
 * Helper threads worth starting: one per idle core, at most three. A helper on a core that other
 * processes already keep busy only adds its start-up (loading and compiling the validator again) to
 * the machine's work, and makes the whole run slower.
 */
export function helperThreads(): number {
  const cores = availableParallelism()
  const idle = Math.floor(cores - loadavg()[0]!)
  return Math.max(0, Math.min(cores - 1, idle, 3))
}

const waiting: Helper[] = []

/** Starts the helpers this machine has room for, to be taken by takeHelpers. */
export function prestartHelpers(): void {
  for (let i = waiting.length; i < helperThreads(); i++) waiting.push(spawnHelper())
}

/** `count` helpers: prestarted ones first, then new ones. */
export function takeHelpers(count: number): Helper[] {
  const taken = waiting.splice(0, count)
  while (taken.length < count) taken.push(spawnHelper())
  return taken
}

/** Stops the prestarted helpers nobody took (few files, or a caller that keeps values). */
export function releaseHelpers(): void {
  for (const helper of waiting.splice(0)) helper.stop()
}

function spawnHelper(): Helper {
  // The entry is plain JavaScript so that the helper can turn on the compile cache this process uses
  // before it loads any TypeScript: without it, each helper strips the types of every module again.
  const cacheDir = module.getCompileCacheDir?.()
  const entry = `${cacheDir ? `require('node:module').enableCompileCache(${JSON.stringify(cacheDir)});` : ''}import(${JSON.stringify(new URL('./validate-worker.ts', import.meta.url).href)})`
  const worker = new Worker(entry, { eval: true })
  // A helper waiting for work must not keep the process alive; one at work is waited for.
  worker.unref()
  let failure: unknown
  worker.once('error', (error) => (failure = error))
  return {
    start(data) {
      worker.ref()
      const results = new Promise<[number, FileSummary][]>((resolve, reject) => {
        if (failure !== undefined) reject(failure)
        worker.once('message', (message: [number, FileSummary][]) => resolve(message))
        worker.once('error', reject)
      })
      // A helper that is stopped before it starts is never waited for: its failure is nobody's error.
      results.catch(() => {})
      worker.postMessage(data)
      return results
    },
    stop() {
      worker.unref()
      void worker.terminate()
    },
  }
}
