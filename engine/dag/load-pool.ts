/**
 * Loads many DAG files off the main thread: the files are split over a few worker threads that
 * validate and normalize them, so a scheduler syncing a large folder keeps answering its timers
 * (heartbeats, LISTEN, the web server of `cairn up`) meanwhile. A few files are loaded on the main
 * thread instead, one per turn of the event loop: starting a worker costs more than they do.
 */
import { availableParallelism } from 'node:os'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'
import type { DeploymentNames } from './dag-semantics.ts'
import { loadDagFile } from './load-dag-file.ts'
import type { LoadedFile } from './load-dag-file.ts'

/** At or above this many files, worker threads load them. */
export const WORKER_THRESHOLD = 16

export async function loadDagFiles(items: readonly { file: string; bytes: Uint8Array }[], names: DeploymentNames | undefined): Promise<LoadedFile[]> {
  if (items.length < WORKER_THRESHOLD) {
    const out: LoadedFile[] = []
    for (const { file, bytes } of items) {
      out.push(loadDagFile(file, bytes, names))
      await nextTurn()
    }
    return out
  }
  const count = Math.max(1, Math.min(availableParallelism(), 4, Math.ceil(items.length / WORKER_THRESHOLD)))
  const slices: { file: string; bytes: Uint8Array }[][] = Array.from({ length: count }, () => [])
  items.forEach((item, i) => slices[i % count]!.push(item))
  const plainNames = names ? { pools: [...names.pools], clusters: [...names.clusters] } : undefined
  const results = await Promise.all(slices.map((slice) => loadOnWorker(slice, plainNames)))
  const byFile = new Map<string, LoadedFile>()
  for (const result of results) for (const loaded of result) byFile.set(loaded.file, loaded)
  return items.map((item) => byFile.get(item.file)!)
}

function loadOnWorker(items: { file: string; bytes: Uint8Array }[], names: { pools: string[]; clusters: string[] } | undefined): Promise<LoadedFile[]> {
  return new Promise((resolve, reject) => {
    const out: LoadedFile[] = []
    const worker = new Worker(new URL('./load-worker.ts', import.meta.url), { workerData: { items, names } })
    worker.on('message', (message: LoadedFile[] | 'done') => {
      if (message === 'done') {
        resolve(out)
        void worker.terminate()
      } else out.push(...message)
    })
    worker.once('error', reject)
    worker.once('exit', (code) => {
      if (code !== 0 && out.length < items.length) reject(new Error(`DAG loading thread exited with code ${code}`))
    })
  })
}
