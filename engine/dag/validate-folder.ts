/**
 * Validates files and folders: finds the YAML files, validates each one (on worker threads when
 * there are many), then runs the checks that span files (DAG ids and feature views unique).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative, isAbsolute, resolve } from 'node:path'
import type { Diagnostic } from './diagnostics.ts'
import { compareDiagnostics } from './diagnostics.ts'
import { firstDeclared } from './first-declared.ts'
import { loadYaml, validateSource, validateText } from './validate.ts'
import type { FileKind, FileValidation, ValidateOptions } from './validate.ts'
import type { Json } from './yaml-load.ts'
import { toPlainNames } from './dag-semantics.ts'
import { helperThreads, releaseHelpers, takeHelpers } from './helper-threads.ts'

export interface FileSummary {
  file: string
  kind: FileKind | undefined
  /** `dag` or `feature_view` value, when it is a string. */
  id: string | undefined
  diagnostics: Diagnostic[]
  /** The parsed document, only when it was asked for and the file has no errors. */
  value?: { [key: string]: Json }
}

export interface FolderValidation {
  files: FileSummary[]
  diagnostics: Diagnostic[]
}

const YAML_FILE = /\.ya?ml$/i
const SKIP_DIRS = new Set(['node_modules', '.git', '.cairn'])

/** Every *.yaml / *.yml under the given paths, sorted, as paths relative to `cwd` where possible. */
export function collectYamlFiles(paths: readonly string[], cwd: string): { files: string[]; missing: string[] } {
  const files: string[] = []
  const missing: string[] = []
  const walk = (dir: string): void => {
    // join(dir, name) without normalizing each path again: `dir` is normalized (join(path, '.') for the
    // root), and a name holds no slash and is neither . nor .. (names starting with a dot are skipped).
    const prefix = dir === '.' ? '' : dir === '/' ? '/' : `${dir}/`
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || SKIP_DIRS.has(entry.name)) continue
      const full = prefix + entry.name
      if (entry.isDirectory()) walk(full)
      else if (entry.isFile() && YAML_FILE.test(entry.name)) files.push(full)
    }
  }
  for (const path of paths) {
    let stat
    try {
      stat = statSync(path)
    } catch {
      missing.push(path)
      continue
    }
    if (stat.isDirectory()) walk(join(path, '.'))
    else files.push(path)
  }
  const shown = files.map((f) => (isAbsolute(f) ? relativeIfInside(f, cwd) : f))
  return { files: [...new Set(shown)].sort(), missing }
}

function relativeIfInside(file: string, cwd: string): string {
  const rel = relative(cwd, file)
  return rel.startsWith('..') ? file : rel
}

/** Validates one file from disk; never throws. `file` is the name shown in diagnostics, `readPath` where it is read from. */
export function validateFile(file: string, options: ValidateOptions = {}, keepValue = false, readPath: string = file): FileSummary {
  // Read as text (no copy, no separate decoding); a file that is not valid UTF-8 (the text holds a
  // replacement character) or cannot be read is read again as bytes, whose checks report it.
  let text: string | undefined
  try {
    text = readFileSync(readPath, 'utf8')
  } catch {
    text = undefined
  }
  let result: FileValidation
  if (text !== undefined && !text.includes('\uFFFD')) result = validateText(file, text, options)
  else {
    let bytes: Uint8Array
    try {
      bytes = readFileSync(readPath)
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error)
      return { file, kind: undefined, id: undefined, diagnostics: [{ file, line: 1, column: 1, path: '', code: 'FILE_READ', message: `cannot read file: ${reason}`, severity: 'error' }] }
    }
    result = validateSource(file, bytes, options)
  }
  const idKey = result.kind === 'feature_view' ? 'feature_view' : 'dag'
  const id = typeof result.value?.[idKey] === 'string' ? (result.value[idKey] as string) : undefined
  const summary: FileSummary = { file, kind: result.kind, id, diagnostics: result.diagnostics }
  if (keepValue && result.ok && result.value) summary.value = result.value
  return summary
}

/** Below this many files the calling thread is done before a helper thread has loaded the validator. */
const PARALLEL_THRESHOLD = 200

/** Files a thread takes at a time: few enough to share the work evenly, enough that taking costs nothing. */
const CHUNK = 8

export interface ValidatePathsOptions extends ValidateOptions {
  cwd?: string
  keepValues?: boolean
  /** Helper threads to use (tests); by default as many as there are idle cores, for many files. */
  helpers?: number
}

export async function validatePaths(paths: readonly string[], options: ValidatePathsOptions = {}): Promise<FolderValidation> {
  const cwd = options.cwd ?? process.cwd()
  const { files, missing } = collectYamlFiles(paths, cwd)
  const fileOptions: ValidateOptions = options.names ? { names: options.names } : {}
  const helpers = options.keepValues ? 0 : (options.helpers ?? (files.length >= PARALLEL_THRESHOLD ? helperThreads() : 0))
  // Helpers started early and not used (few files) stop before this thread starts.
  if (helpers === 0) releaseHelpers()
  const summaries = helpers > 0 ? await validateShared(files, fileOptions, helpers, cwd) : files.map((file) => validateFile(file, fileOptions, options.keepValues, resolve(cwd, file)))
  releaseHelpers()
  const diagnostics = summaries.flatMap((s) => s.diagnostics)
  for (const path of missing) {
    diagnostics.push({ file: path, line: 1, column: 1, path: '', code: 'PATH_NOT_FOUND', message: `no such file or folder: ${path}`, severity: 'error' })
  }
  diagnostics.push(...duplicateIds(summaries, cwd))
  diagnostics.sort(compareDiagnostics)
  return { files: summaries, diagnostics }
}

/**
 * Two files declaring one DAG (or feature view) id: the one that declared it first keeps it (oldest
 * modification time, then path, as the scheduler decides on a fresh database) and each later one is
 * an error.
 */
function duplicateIds(summaries: readonly FileSummary[], cwd: string): Diagnostic[] {
  const out: Diagnostic[] = []
  const groups = new Map<string, FileSummary[]>()
  for (const summary of summaries) {
    if (summary.id === undefined || summary.kind === 'config' || summary.kind === undefined) continue
    const key = `${summary.kind}:${summary.id}`
    const group = groups.get(key)
    if (group) group.push(summary)
    else groups.set(key, [summary])
  }
  for (const group of groups.values()) {
    if (group.length < 2) continue
    const [first, ...later] = group.map((s) => ({ summary: s, file: s.file, mtimeMs: mtimeOf(resolve(cwd, s.file)) })).sort(firstDeclared)
    for (const { summary } of later) {
      const at = locateKey(resolve(cwd, summary.file), summary.kind === 'dag' ? 'dag' : 'feature_view')
      const kind = summary.kind === 'dag' ? 'DAG' : 'feature view'
      out.push({
        file: summary.file,
        line: at.line,
        column: at.column,
        path: summary.kind === 'dag' ? 'dag' : 'feature_view',
        code: summary.kind === 'dag' ? 'DUPLICATE_DAG_ID' : 'DUPLICATE_FEATURE_VIEW',
        message: `${kind} "${summary.id}" is already declared in ${first!.file}`,
        severity: 'error',
      })
    }
  }
  return out
}

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs
  } catch {
    return Number.POSITIVE_INFINITY
  }
}

/** Position of a top-level key's value; parses the file again, which only happens for the rare duplicate. */
function locateKey(file: string, key: string): { line: number; column: number } {
  try {
    const loaded = loadYaml(readFileSync(file))
    return loaded.ok ? loaded.yaml.locate([key]) : { line: 1, column: 1 }
  } catch {
    return { line: 1, column: 1 }
  }
}

/**
 * Validates the files on this thread and on helper threads that take chunks from one shared counter.
 * This thread starts at once; a helper joins when it has loaded the validator, so a helper that is
 * slow to start (a busy machine) costs nothing but its start-up, and one that has not started when
 * the files run out is stopped. The result keeps the input order.
 */
async function validateShared(files: readonly string[], options: ValidateOptions, helpers: number, cwd: string): Promise<FileSummary[]> {
  // [0]: the next file to take; [1 + i]: helper i is 0 loading, 1 working, 2 not needed any more.
  const shared = new SharedArrayBuffer(4 * (1 + helpers))
  const state = new Int32Array(shared)
  const names = options.names ? toPlainNames(options.names) : undefined
  const out = new Array<FileSummary>(files.length)
  const started = takeHelpers(helpers).map((helper, i) => ({ helper, results: helper.start({ files, names, cwd, shared, slot: 1 + i, chunk: CHUNK }) }))
  for (;;) {
    const first = Atomics.add(state, 0, CHUNK)
    if (first >= files.length) break
    for (let i = first; i < Math.min(first + CHUNK, files.length); i++) out[i] = validateFile(files[i]!, options, false, resolve(cwd, files[i]!))
  }
  await Promise.all(
    started.map(async ({ helper, results }, i) => {
      // Not started yet: it is not needed any more.
      if (Atomics.compareExchange(state, 1 + i, 0, 2) === 0) return helper.stop()
      for (const [index, summary] of await results) out[index] = summary
    }),
  )
  return out
}
