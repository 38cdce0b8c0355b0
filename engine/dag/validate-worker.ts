/** Worker thread body for validate-folder.ts: validates its slice of files and posts the summaries back. */
import { resolve } from 'node:path'
import { parentPort, workerData } from 'node:worker_threads'
import { validateFile } from './validate-folder.ts'
import type { ValidateOptions } from './validate.ts'

const { files, names, cwd } = workerData as { files: string[]; names?: { pools: string[]; clusters: string[] }; cwd: string }
const options: ValidateOptions = names ? { names: { pools: new Set(names.pools), clusters: new Set(names.clusters) } } : {}
parentPort?.postMessage(files.map((file) => validateFile(file, options, false, resolve(cwd, file))))
