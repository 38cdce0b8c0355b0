/**
 * Which files a file source reads (SPEC section 7): a path or glob relative to the DAG folder, read
 * only inside the allowed folders (the DAG folder, CAIRN_HOME, data.allowed_paths) once `..` and
 * symbolic links are resolved. Each match is checked through its real path, so a link inside an
 * allowed folder that points outside it is refused like the outside path itself.
 */
import { glob, realpath, stat } from 'node:fs/promises'
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path'
import { dataInvalid, invalid } from '../../engine/data/reader/failure.ts'
import type { ReadFailure } from '../../engine/data/reader/failure.ts'

const GLOB_CHARS = /[*?[\]{}]/

export interface SourceFiles {
  /** Absolute real paths, sorted, at least one. */
  files: string[]
}

export async function resolveSourceFiles(pattern: string, where: { dagsFolder: string; allowedPaths: readonly string[] }): Promise<SourceFiles | ReadFailure> {
  if (pattern.includes('\0')) return invalid('source.path holds a NUL character')
  const absolute = resolve(where.dagsFolder, pattern)
  const roots = await realRoots(where.allowedPaths)
  const refuse = (path: string, real: string) => invalid(
    `source.path ${JSON.stringify(pattern)}: ${path}${real !== path ? ` (really ${real})` : ''} is outside the folders file sources may read ` +
    `(${where.allowedPaths.join(', ')}; add a folder to data.allowed_paths in cairn.yaml to allow it)`,
  )
  // The fixed part of the pattern must already lie inside an allowed folder, links resolved.
  const fixed = fixedPrefix(absolute)
  const fixedReal = await deepestRealPath(fixed)
  if (!roots.some((root) => inside(root, fixedReal))) return refuse(fixed, fixedReal)

  const matches: string[] = []
  if (GLOB_CHARS.test(absolute)) {
    for await (const match of glob(absolute)) matches.push(resolve(where.dagsFolder, match))
  } else {
    matches.push(absolute)
  }
  matches.sort()
  const files: string[] = []
  for (const match of matches) {
    const real = await realpath(match).catch(() => undefined)
    if (real === undefined) return dataInvalid(`source.path ${JSON.stringify(pattern)}: ${match} does not exist`)
    if (!roots.some((root) => inside(root, real))) return refuse(match, real)
    const info = await stat(real)
    if (info.isFile()) files.push(real)
  }
  if (files.length === 0) return failureNoMatch(pattern, absolute)
  return { files }
}

function failureNoMatch(pattern: string, absolute: string): ReadFailure {
  // A file written by another system may simply not be there yet: let the task's retries wait for it.
  return { failed: true, kind: 'data_invalid', retryable: true, message: `source.path ${JSON.stringify(pattern)}: no file matches ${absolute}` }
}

/** The path up to (not including) the first segment with a glob character. */
function fixedPrefix(absolute: string): string {
  const parts = absolute.split(sep)
  const firstGlob = parts.findIndex((p) => GLOB_CHARS.test(p))
  if (firstGlob < 0) return absolute
  return parts.slice(0, firstGlob).join(sep) || sep
}

/** The real path of `path`, or of its deepest existing ancestor joined with the rest. */
async function deepestRealPath(path: string): Promise<string> {
  let current = path
  let rest = ''
  for (;;) {
    const real = await realpath(current).catch(() => undefined)
    if (real !== undefined) return rest === '' ? real : resolve(real, rest)
    const parent = dirname(current)
    if (parent === current) return path
    rest = rest === '' ? relative(parent, current) : `${relative(parent, current)}${sep}${rest}`
    current = parent
  }
}

async function realRoots(paths: readonly string[]): Promise<string[]> {
  const roots: string[] = []
  for (const path of paths) {
    const real = await realpath(path).catch(() => undefined)
    if (real !== undefined) roots.push(real)
  }
  return roots
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path)
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel))
}
