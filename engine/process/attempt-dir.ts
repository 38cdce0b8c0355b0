/**
 * The attempt's folder on the worker: `<work root>/<run>/<task>/<attempt>`, owned by the task user,
 * and the file-system steps around it (creating it, a task's `workdir` inside it, reading the
 * outputs file, removing leftovers).
 *
 * Rules, and why:
 * - Every step takes the attempt's AbortSignal and a time limit. A file-system call cannot be
 *   interrupted once the kernel has it, but the attempt no longer waits for it: a cancel or a
 *   timeout ends the attempt even when a call hangs (a dead NFS mount, a FIFO).
 * - Never `mkdir -p` on a path a DAG author chose: Node's recursive mkdir spins forever at 100% CPU
 *   on paths such as /proc/self/x (mkdir answers ENOENT for a parent that exists). A task's `workdir`
 *   is a relative path that stays inside the attempt's folder, checked after rendering.
 * - The worker (root, when tasks run as another user) never follows a link inside a folder the task
 *   user can write: the attempt's folder is created before it is handed over, `workdir` folders are
 *   created by the task user itself, and the outputs file is opened with O_NOFOLLOW | O_NONBLOCK.
 * - Folders above the attempt are the worker's, mode 0711: the task user can pass through to its
 *   own folder but cannot list, create or rename anything next to it.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { chmod, chown, lstat, mkdir, open, readdir, rename, rmdir, unlink } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from 'pino'
import { grantTraversal } from '../store/embedded-os-user.ts'
import type { TaskUser } from './task-user.ts'

export { checkWorkdir } from './workdir.ts'

/** How long one file-system step may take before the attempt gives up on it. */
const FS_STEP_TIMEOUT_MS = 30_000

export type StepResult<T> = { ok: true; value: T } | { ok: false; aborted: true } | { ok: false; aborted: false; message: string }

/**
 * Runs one file-system operation, but stops waiting for it when `signal` aborts or `timeoutMs`
 * passes. The operation itself may still finish later in the background; its result is then dropped.
 */
export async function fsStep<T>(what: string, operation: () => Promise<T>, signal: AbortSignal, timeoutMs = FS_STEP_TIMEOUT_MS): Promise<StepResult<T>> {
  if (signal.aborted) return { ok: false, aborted: true }
  let onAbort: (() => void) | undefined
  let timer: NodeJS.Timeout | undefined
  const stopped = new Promise<'aborted' | 'timeout'>((resolve) => {
    onAbort = () => resolve('aborted')
    signal.addEventListener('abort', onAbort, { once: true })
    timer = setTimeout(() => resolve('timeout'), timeoutMs)
  })
  const work = operation()
  // A late rejection of an abandoned operation must not become an unhandled rejection.
  work.catch(() => undefined)
  try {
    const winner = await Promise.race([work.then((value) => ({ value })), stopped])
    if (winner === 'aborted') return { ok: false, aborted: true }
    if (winner === 'timeout') return { ok: false, aborted: false, message: `${what} did not finish within ${timeoutMs} ms` }
    return { ok: true, value: winner.value }
  } catch (error) {
    return { ok: false, aborted: false, message: `${what}: ${errorMessage(error)}` }
  } finally {
    clearTimeout(timer)
    if (onAbort) signal.removeEventListener('abort', onAbort)
  }
}

/**
 * The worker's folder of attempt folders, at start-up: mode 0711 (the task user passes through but
 * cannot list or create), and every folder above it searchable by the task user.
 */
export async function prepareWorkRoot(workRoot: string, user: TaskUser | undefined, log: Logger): Promise<void> {
  await mkdir(workRoot, { recursive: true, mode: 0o711 })
  await chmod(workRoot, 0o711)
  if (user) await grantTraversal(workRoot, user, log, `the task user ${user.name}`)
}

/**
 * Creates the attempt's folder, empty, owned by the task user (mode 0700), with the worker's
 * folders above it (mode 0711). A folder left by an earlier try of the same attempt (an attempt
 * handed back by a draining worker runs again) is moved aside and removed in the background.
 */
export async function prepareAttemptDir(dir: string, user: TaskUser | undefined, signal: AbortSignal, options: { keep?: boolean } = {}): Promise<StepResult<void>> {
  // Built from run, task and attempt ids, never from DAG text: a plain recursive mkdir is safe here.
  const parents = await fsStep('creating the attempt folder', () => mkdir(path.dirname(dir), { recursive: true, mode: 0o711 }), signal)
  if (!parents.ok) return parents
  const existing = await fsStep('looking for a leftover attempt folder', () => lstat(dir).then(() => true, (error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? false : Promise.reject(error))), signal)
  if (!existing.ok) return existing
  // An attempt that re-attaches to its job (started by an earlier worker) keeps the folder that job uses.
  if (existing.value && options.keep === true) return { ok: true, value: undefined }
  if (existing.value) {
    const aside = `${dir}.old-${randomBytes(4).toString('hex')}`
    const moved = await fsStep('moving a leftover attempt folder aside', () => rename(dir, aside), signal)
    if (!moved.ok) return moved
    // Not awaited: a large leftover must not hold up the new attempt.
    void removeAttemptDir(aside, user, new AbortController().signal)
  }
  const made = await fsStep('creating the attempt folder', () => mkdir(dir, { mode: 0o700 }), signal)
  if (!made.ok) return made
  if (user) {
    // The folder is new and its parent is the worker's: nobody can have put a link in its place.
    const owned = await fsStep('handing the attempt folder to the task user', () => chown(dir, user.uid, user.gid), signal)
    if (!owned.ok) return owned
  }
  return { ok: true, value: undefined }
}

/**
 * Creates `relative` (checked by checkWorkdir) inside the attempt's folder as the task user, so
 * that a link planted there can only lead where that user could write anyway.
 */
export async function createWorkdir(attemptDir: string, relative: string, user: TaskUser | undefined, signal: AbortSignal, timeoutMs = FS_STEP_TIMEOUT_MS): Promise<StepResult<string>> {
  if (relative === '.') return { ok: true, value: attemptDir }
  const made = await runAsTaskUser(`creating workdir ${relative}`, ['mkdir', '-p', '--', relative], attemptDir, user, signal, timeoutMs)
  return made.ok ? { ok: true, value: path.join(attemptDir, relative) } : made
}

/**
 * Removes a folder the task user wrote into. Its contents go as the task user (`rm -rf` never
 * follows links, and as that user it could not remove anything the user could not remove anyway:
 * done as root, a link swapped in mid-walk would make root delete elsewhere); the emptied folder
 * itself, in a folder of the worker's, goes as the worker.
 */
async function removeAttemptDir(dir: string, user: TaskUser | undefined, signal: AbortSignal, timeoutMs = 10 * FS_STEP_TIMEOUT_MS): Promise<StepResult<void>> {
  const emptied = await runAsTaskUser(`removing ${dir}`, ['rm', '-rf', '--', path.basename(dir)], path.dirname(dir), user, signal, timeoutMs)
  // As the task user, the last step (the folder itself, in a folder of the worker's) is refused.
  if (!user || (!emptied.ok && emptied.aborted)) return emptied
  return fsStep(`removing ${dir}`, () => rmdir(dir).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? undefined : Promise.reject(error))), signal)
}

/**
 * Removes a run's folder `<work root>/<run>` (a pruned run's, engine/worker/work-sweep.ts): each attempt folder
 * as the task user, as a leftover is removed, so that a link the task planted, or a process it left behind
 * swapping folders for links, can never lead the worker's own removal outside; then the worker's folders above.
 */
export async function removeRunDir(runDir: string, user: TaskUser | undefined, signal: AbortSignal): Promise<StepResult<void>> {
  const tasks = await fsStep(`listing ${runDir}`, () => readdir(runDir, { withFileTypes: true }), signal)
  if (!tasks.ok) return tasks
  for (const task of tasks.value) {
    const taskDir = path.join(runDir, task.name)
    // The worker's own folders (0711) hold only attempt folders; anything else in them is the worker's too.
    if (!task.isDirectory()) {
      const gone = await fsStep(`removing ${taskDir}`, () => unlink(taskDir), signal)
      if (!gone.ok) return gone
      continue
    }
    const attempts = await fsStep(`listing ${taskDir}`, () => readdir(taskDir), signal)
    if (!attempts.ok) return attempts
    for (const attempt of attempts.value) {
      const removed = await removeAttemptDir(path.join(taskDir, attempt), user, signal)
      if (!removed.ok) return removed
    }
    const emptied = await fsStep(`removing ${taskDir}`, () => rmdir(taskDir), signal)
    if (!emptied.ok) return emptied
  }
  return fsStep(`removing ${runDir}`, () => rmdir(runDir), signal)
}

/** Runs a small file-system command as the task user (or as the worker when there is none), killed on abort or timeout. */
function runAsTaskUser(what: string, argv: string[], cwd: string, user: TaskUser | undefined, signal: AbortSignal, timeoutMs: number): Promise<StepResult<void>> {
  if (signal.aborted) return Promise.resolve({ ok: false, aborted: true })
  return new Promise((resolve) => {
    let output = ''
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd,
      env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      signal,
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    })
    child.stderr.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2000)))
    child.once('error', (error) => {
      if (signal.aborted) resolve({ ok: false, aborted: true })
      else resolve({ ok: false, aborted: false, message: `${what}: ${errorMessage(error)}` })
    })
    child.once('close', (code, killedBy) => {
      if (signal.aborted) resolve({ ok: false, aborted: true })
      else if (code === 0) resolve({ ok: true, value: undefined })
      else if (killedBy) resolve({ ok: false, aborted: false, message: `${what} did not finish within ${timeoutMs} ms` })
      else resolve({ ok: false, aborted: false, message: `${what}: ${output.trim() || `${argv[0]} exited with code ${code}`}` })
    })
  })
}

export type FileRead = { found: false } | { found: true; ok: true; text: string } | { found: true; ok: false; message: string }

/**
 * Reads a file the task wrote, at most `maxBytes`: never through a link (O_NOFOLLOW), never
 * blocking on a FIFO or device (O_NONBLOCK, and only regular files are read).
 */
export async function readTaskFile(file: string, maxBytes: number, signal: AbortSignal, label = file): Promise<FileRead | { aborted: true }> {
  const result = await fsStep(`reading ${label}`, async (): Promise<FileRead> => {
    let handle
    try {
      handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return { found: false }
      if (code === 'ELOOP') return { found: true, ok: false, message: `${label} is a symbolic link; it must be a regular file` }
      throw error
    }
    try {
      const info = await handle.stat()
      if (!info.isFile()) return { found: true, ok: false, message: `${label} is not a regular file` }
      if (info.size > maxBytes) return { found: true, ok: false, message: `${label} is ${info.size} bytes; outputs are limited to ${maxBytes} bytes` }
      const buffer = Buffer.alloc(Math.min(info.size, maxBytes) + 1)
      let length = 0
      for (;;) {
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length)
        if (bytesRead === 0) break
        length += bytesRead
        if (length >= buffer.length) return { found: true, ok: false, message: `${label} grew past ${maxBytes} bytes while being read` }
      }
      return { found: true, ok: true, text: buffer.toString('utf8', 0, length) }
    } finally {
      await handle.close()
    }
  }, signal)
  if (result.ok) return result.value
  if (result.aborted) return { aborted: true }
  return { found: true, ok: false, message: `cannot read ${label}: ${result.message}` }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
