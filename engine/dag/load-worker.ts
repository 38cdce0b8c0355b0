/**
 * Worker thread body for load-pool.ts: reads, hashes and (when the content changed) loads the files it
 * is given, and posts the results back in small messages, so the main thread never spends long on
 * one. Synchronous reads are fine here: this thread does nothing else.
 */
import { readFileSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'
import { loadIfChanged } from './load-dag-file.ts'
import type { ReadResult } from './load-dag-file.ts'
import { fromPlainNames } from './dag-semantics.ts'
import type { PlainDeploymentNames } from './dag-semantics.ts'

const { items, names } = workerData as { items: { file: string; path: string; knownHash?: string }[]; names?: PlainDeploymentNames }
const deployment = names ? fromPlainNames(names) : undefined
const CHUNK = 20
let chunk: ReadResult[] = []
for (const { file, path, knownHash } of items) {
  let bytes: Uint8Array | undefined
  try {
    bytes = readFileSync(path)
  } catch {
    bytes = undefined
  }
  chunk.push(bytes === undefined ? { file, missing: true } : loadIfChanged(file, bytes, knownHash, deployment))
  if (chunk.length === CHUNK) {
    parentPort?.postMessage(chunk)
    chunk = []
  }
}
parentPort?.postMessage(chunk)
parentPort?.postMessage('done')
