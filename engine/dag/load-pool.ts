/**
 * Reads and loads many DAG files off the main thread: the files are split over worker threads that
 * read, hash, validate and normalize them, so a scheduler syncing a large folder keeps answering its
 * timers (heartbeats, LISTEN, the web server of `cairn up`) meanwhile. A few files are handled on the
 * main thread instead (asynchronous reads, one file per turn of the event loop): starting a worker
 * costs more than they do.
 */
import { readFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'
import { toPlainNames } from './dag-semantics.ts'
import type { DeploymentNames, PlainDeploymentNames } from './dag-semantics.ts'
import { loadIfChanged } from './load-dag-file.ts'
import type { ReadResult } from './load-dag-file.ts'

/** At or above this many files, worker threads handle them. */
const WORKER_THRESHOLD = 16

export interface ReadItem {
  /** The name shown in diagnostics and stored. */
  file: string
  /** Where it is read from. */
  path: string
  /** Content hash of the version already loaded: the same content is not loaded again. */
  knownHash?: string
}

export async function readDagFiles(items: readonly ReadItem[], names: DeploymentNames | undefined): Promise<ReadResult[]> {
  if (items.length < WORKER_THRESHOLD) {
    const out: ReadResult[] = []
    for (const { file, path, knownHash } of items) {
      const bytes = await readFile(path).catch(() => undefined)
      out.push(bytes === undefined ? { file, missing: true } : loadIfChanged(file, bytes, knownHash, names))
      await nextTurn()
    }
    return out
  }
  // One core is left to the main thread (and Postgres): the point is that it stays responsive.
  const count = Math.max(1, Math.min(availableParallelism() - 1, 4, Math.ceil(items.length / WORKER_THRESHOLD)))
  const slices: ReadItem[][] = Array.from({ length: count }, () => [])
  items.forEach((item, i) => slices[i % count]!.push(item))
  const plainNames = names ? toPlainNames(names) : undefined
  const results = await Promise.all(slices.map((slice) => readOnWorker(slice, plainNames)))
  const byFile = new Map<string, ReadResult>()
  for (const result of results) for (const r of result) byFile.set(r.file, r)
  return items.map((item) => byFile.get(item.file)!)
}

function readOnWorker(items: ReadItem[], names: PlainDeploymentNames | undefined): Promise<ReadResult[]> {
  return new Promise((resolve, reject) => {
    const out: ReadResult[] = []
    let done = false
    const worker = new Worker(new URL('./load-worker.ts', import.meta.url), { workerData: { items, names } })
    worker.on('message', (message: ReadResult[] | 'done') => {
      if (message !== 'done') {
        out.push(...message)
        return
      }
      done = true
      resolve(out)
      void worker.terminate()
    })
    worker.once('error', reject)
    worker.once('exit', (code) => {
      if (!done) reject(new Error(`the DAG loading thread exited with code ${code} before it finished`))
    })
  })
}
