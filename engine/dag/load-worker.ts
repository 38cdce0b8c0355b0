/**
 * Worker thread body for load-pool.ts: loads the files it is sent (bytes already read) and posts the
 * results back in small messages, so the main thread never spends long deserializing one.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { loadDagFile } from './load-dag-file.ts'
import type { LoadedFile } from './load-dag-file.ts'

const { items, names } = workerData as { items: { file: string; bytes: Uint8Array }[]; names?: { pools: string[]; clusters: string[] } }
const deployment = names ? { pools: new Set(names.pools), clusters: new Set(names.clusters) } : undefined
const CHUNK = 20
let chunk: LoadedFile[] = []
for (const { file, bytes } of items) {
  chunk.push(loadDagFile(file, bytes, deployment))
  if (chunk.length === CHUNK) {
    parentPort?.postMessage(chunk)
    chunk = []
  }
}
parentPort?.postMessage(chunk)
parentPort?.postMessage('done')
