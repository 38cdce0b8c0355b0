/**
 * The rule for a task's `workdir`: a relative path that stays inside the attempt's folder. Kept apart
 * from attempt-dir.ts (the file-system steps) because the validator checks it on every shell task
 * and must not load the worker's process and file-system modules to do so.
 */
import path from 'node:path'

/** Folders a `workdir` may nest; also keeps the path far below PATH_MAX. */
const MAX_WORKDIR_DEPTH = 32
const MAX_WORKDIR_LENGTH = 1024

/**
 * Where a task's `workdir` (already rendered) puts its program: a relative path inside the
 * attempt's folder. Returns the relative path normalised, or a message for the DAG author.
 */
export function checkWorkdir(workdir: string): { ok: true; relative: string } | { ok: false; message: string } {
  const shown = JSON.stringify(workdir.length > 200 ? `${workdir.slice(0, 200)}…` : workdir)
  if (workdir.includes('\0')) return { ok: false, message: `workdir ${shown} contains a NUL byte` }
  if (path.posix.isAbsolute(workdir)) {
    return { ok: false, message: `workdir ${shown} is an absolute path; workdir is a folder inside the attempt's own folder (a relative path such as "build" or "out/{{ ds }}")` }
  }
  const relative = path.posix.normalize(workdir)
  if (relative === '..' || relative.startsWith('../')) {
    return { ok: false, message: `workdir ${shown} leaves the attempt's folder through ".."; workdir must stay inside it` }
  }
  if (workdir.length > MAX_WORKDIR_LENGTH) return { ok: false, message: `workdir is ${workdir.length} characters long; at most ${MAX_WORKDIR_LENGTH}` }
  const depth = relative.split('/').filter((part) => part !== '' && part !== '.').length
  if (depth > MAX_WORKDIR_DEPTH) return { ok: false, message: `workdir ${shown} nests ${depth} folders deep; at most ${MAX_WORKDIR_DEPTH}` }
  return { ok: true, relative: relative === '.' || relative === './' ? '.' : relative.replace(/\/$/, '') }
}
