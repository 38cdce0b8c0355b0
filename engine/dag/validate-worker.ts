/**
 * Helper thread body for validate-folder.ts (started by helper-threads.ts): loads the validator,
 * then waits for its work, takes chunks of files from the shared counter until none are left and
 * posts [index, summary] pairs back. It does nothing when the calling thread has already marked it
 * as not needed (it finished the files while this thread was loading).
 */
import { resolve } from 'node:path'
import { parentPort } from 'node:worker_threads'
import { validateFile } from './validate-folder.ts'
import type { FileSummary } from './validate-folder.ts'
import type { HelperData } from './helper-threads.ts'
import type { ValidateOptions } from './validate.ts'
import { fromPlainNames } from './dag-semantics.ts'

parentPort?.once('message', ({ files, names, cwd, shared, slot, chunk }: HelperData) => {
  const state = new Int32Array(shared)
  const options: ValidateOptions = names ? { names: fromPlainNames(names) } : {}
  const results: [number, FileSummary][] = []
  if (Atomics.compareExchange(state, slot, 0, 1) === 0) {
    for (;;) {
      const first = Atomics.add(state, 0, chunk)
      if (first >= files.length) break
      for (let i = first; i < Math.min(first + chunk, files.length); i++) results.push([i, validateFile(files[i]!, options, false, resolve(cwd, files[i]!))])
    }
  }
  parentPort?.postMessage(results)
})
