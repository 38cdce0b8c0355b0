/**
 * Runs one program for a task attempt: no shell, its own process group, output streamed line by
 * line (read-output-lines.ts), and no way for the group to outlive the task or the worker.
 *
 * How the group is kept on a leash:
 * - `detached: true` makes the program the leader of a new session and process group, so one
 *   signal to `-pgid` reaches it and every descendant that stays in the group.
 * - Abort (cancel, timeout, drain): SIGTERM to the group, SIGKILL to the group `killGraceMs` later.
 * - The program exits on its own: leftover members of its group (background jobs of a script) get
 *   SIGTERM at once and SIGKILL after `killGraceMs`; the task ends with its main program.
 * - The worker dies (even by SIGKILL, which it cannot catch), two guards:
 *   1. util-linux `setpriv --pdeathsig SIGKILL` runs the program, so the kernel kills it when the
 *      worker dies (setpriv execs the program, so pid and exit status are the program's own);
 *   2. a watchdog `/bin/sh` per task, in its own session, blocks reading a pipe whose other end only
 *      the worker holds; when the worker dies the read sees end-of-file and the watchdog SIGKILLs
 *      the whole process group. This also covers grandchildren, which pdeathsig does not.
 *
 * Tasks run as the task user (`user`, see task-user.ts) when one is given; the worker keeps its
 * own uid, so it can still signal the group and the watchdog still runs as the worker.
 *
 * Limits (documented, not solved here):
 * - A descendant that leaves the group (setsid, setpgid, a double-forking daemon) escapes every
 *   guard; only a cgroup (systemd scope, container) can contain that. If it also keeps stdout or
 *   stderr open, its output is read for 1 s more (`killGraceMs` + 1 s when members of the group
 *   were left too) and then the pipes are closed, so the task still ends.
 * - pdeathsig fires when the *thread* that spawned the child ends: call runProcess from the main
 *   thread (or from a worker_thread that lives as long as its tasks).
 * - Without setpriv (non-Linux, minimal images), only the watchdog guards the group, and a worker
 *   killed in the microseconds between the two spawns leaves the program running.
 * - The pgid is reused only after every member is gone; signalling a group that has just emptied
 *   could in theory reach a new group with the same number (the kernel cycles through 4M pids).
 */
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { accessSync, constants, statSync } from 'node:fs'
import path from 'node:path'
import { readOutputLines } from './read-output-lines.ts'
import type { OutputStream } from './read-output-lines.ts'

export type { OutputStream }

export interface RunProcessOptions {
  /** Program and arguments, passed to the kernel as they are (no shell, no globbing, no splitting). */
  argv: readonly string[]
  /** The complete environment of the program (nothing is inherited implicitly). */
  env: Readonly<Record<string, string>>
  cwd: string
  /**
   * Run the program as this user and group, with no supplementary groups (libuv calls
   * setgroups(0) before setgid/setuid). Needs root. @default the worker's own user
   */
  user?: { uid: number; gid: number }
  signal?: AbortSignal
  /**
   * Called for every line of output, without its newline. Must not throw (errors are swallowed).
   * When it returns a promise, output is not read (the program blocks once the pipe is full) until
   * that promise settles: the sink's back-pressure.
   */
  onLine(stream: OutputStream, line: string): void | Promise<unknown>
  /** Called once the program has started, with its pid (which is also its process group id). */
  onSpawn?(pid: number): void
  /**
   * Time between SIGTERM and SIGKILL when the group is stopped.
   * @default 10000
   */
  killGraceMs?: number
}

export interface ProcessExit {
  /** Exit status, or null when the program was killed by a signal or never started. */
  exitCode: number | null
  /** The signal that killed the program (e.g. `SIGTERM`), or null. */
  signal: string | null
  /** The signal was aborted while the program was running (or before it started). */
  aborted: boolean
  /** Set when the program never ran: `code` is an errno name (ENOENT, EACCES, ...) or a Node error code. */
  startError?: { code: string; message: string }
}

const DEFAULT_KILL_GRACE_MS = 10_000
/** After the final SIGKILL, how long pipes held open by escaped descendants are still read. */
const DRAIN_AFTER_KILL_MS = 1_000
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin'
const WATCHDOG_SCRIPT = 'read -r _ || kill -s KILL -- "-$1" 2>/dev/null'

export async function runProcess(options: RunProcessOptions): Promise<ProcessExit> {
  const { argv, env, cwd, signal, onLine, onSpawn, user } = options
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS
  if (signal?.aborted) return { exitCode: null, signal: null, aborted: true }
  const problem = checkStart(argv, env, cwd)
  if (problem) return { exitCode: null, signal: null, aborted: false, startError: problem }

  const setpriv = findSetpriv()
  const command = setpriv ? [setpriv, '--pdeathsig', 'SIGKILL', '--', ...argv] : [...argv]
  let child: ChildProcess
  try {
    child = spawn(command[0]!, command.slice(1), {
      cwd,
      env: { ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      shell: false,
      // setpriv then runs as the task user and sets pdeathsig itself: the kernel clears a parent-death
      // signal whenever a process changes its uid, so the order matters.
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    })
  } catch (error) {
    return { exitCode: null, signal: null, aborted: false, startError: startErrorOf(error) }
  }

  return new Promise<ProcessExit>((resolve) => {
    const pgid = child.pid
    let exit: { code: number | null; signal: string | null } | undefined
    let aborted = false
    let killTimer: NodeJS.Timeout | undefined
    let drainTimer: NodeJS.Timeout | undefined
    let settled = false
    let watchdog: ChildProcess | undefined

    const output = readOutputLines(child, onLine, () => maybeFinish())

    const killGroup = (sig: NodeJS.Signals): void => {
      if (pgid === undefined) return
      try {
        process.kill(-pgid, sig)
      } catch {
        // ESRCH: the group is already empty.
      }
    }
    const groupAlive = (): boolean => {
      if (pgid === undefined) return false
      try {
        process.kill(-pgid, 0)
        return true
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === 'EPERM'
      }
    }
    const stopWatchdog = (): void => {
      if (watchdog && watchdog.exitCode === null && watchdog.signalCode === null) watchdog.kill('SIGKILL')
    }
    const armKill = (): void => {
      if (killTimer) return
      killTimer = setTimeout(() => {
        killGroup('SIGKILL')
        stopWatchdog()
        if (exit && output.open > 0) armDrain()
      }, killGraceMs)
      killTimer.unref()
    }
    const armDrain = (): void => {
      if (drainTimer) return
      drainTimer = setTimeout(() => {
        child.stdout?.destroy()
        child.stderr?.destroy()
      }, DRAIN_AFTER_KILL_MS)
      drainTimer.unref()
    }
    const onAbort = (): void => {
      if (exit || settled) return
      aborted = true
      killGroup('SIGTERM')
      armKill()
    }
    const maybeFinish = (): void => {
      if (settled || !exit || output.open > 0) return
      settled = true
      signal?.removeEventListener('abort', onAbort)
      if (drainTimer) clearTimeout(drainTimer)
      if (!groupAlive()) {
        if (killTimer) clearTimeout(killTimer)
        stopWatchdog()
      }
      // Otherwise the pending SIGKILL (unref'd) still clears the leftovers and stops the watchdog.
      resolve({ exitCode: exit.code, signal: exit.signal, aborted })
    }

    child.on('error', (error) => {
      if (child.pid !== undefined || settled) return
      settled = true
      signal?.removeEventListener('abort', onAbort)
      resolve({ exitCode: null, signal: null, aborted: false, startError: startErrorOf(error) })
    })
    child.on('exit', (code, sig) => {
      exit = { code, signal: sig }
      // The task ends with its main program: background jobs it left in the group go too.
      if (groupAlive()) {
        killGroup('SIGTERM')
        armKill()
      }
      if (output.open > 0 && killTimer === undefined) armDrain()
      maybeFinish()
    })

    if (pgid === undefined) return // 'error' follows
    watchdog = startWatchdog(pgid)
    signal?.addEventListener('abort', onAbort, { once: true })
    if (signal?.aborted) onAbort()
    try {
      onSpawn?.(pgid)
    } catch {
      // Same rule as onLine.
    }
  })
}

let setprivPath: string | null | undefined

function findSetpriv(): string | undefined {
  if (setprivPath === undefined) {
    setprivPath = null
    for (const candidate of ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv', '/sbin/setpriv']) {
      // A real run rather than `--help`: also proves prctl(PR_SET_PDEATHSIG) is allowed here.
      const probe = spawnSync(candidate, ['--pdeathsig', 'SIGKILL', '--', '/bin/sh', '-c', 'exit 0'], { stdio: 'ignore', timeout: 5_000, env: {} })
      if (probe.status === 0) {
        setprivPath = candidate
        break
      }
    }
  }
  return setprivPath ?? undefined
}

function startWatchdog(pgid: number): ChildProcess | undefined {
  try {
    const watchdog = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'cairn-watchdog', String(pgid)], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
      env: {},
    })
    watchdog.on('error', () => {})
    watchdog.stdin?.on('error', () => {})
    // Neither may keep the worker alive: the worker exiting is exactly when the watchdog must act.
    watchdog.unref()
    ;(watchdog.stdin as unknown as { unref?(): void } | null)?.unref?.()
    return watchdog
  } catch {
    return undefined
  }
}

/** The reasons Node would refuse or the kernel fail, found before spawning so the message is clear. */
function checkStart(argv: readonly string[], env: Readonly<Record<string, string>>, cwd: string): ProcessExit['startError'] {
  const program = argv[0]
  if (program === undefined || program === '') return { code: 'EINVAL', message: 'the command is empty' }
  if (argv.some((arg) => arg.includes('\0'))) return { code: 'EINVAL', message: 'a command argument contains a NUL byte' }
  for (const [key, value] of Object.entries(env)) {
    if (key === '' || key.includes('=') || key.includes('\0') || value.includes('\0')) {
      return { code: 'EINVAL', message: `environment variable ${JSON.stringify(key)} has an invalid name or a NUL byte in its value` }
    }
  }
  try {
    if (!statSync(cwd).isDirectory()) return { code: 'ENOTDIR', message: `working directory ${cwd} is not a directory` }
  } catch {
    return { code: 'ENOENT', message: `working directory ${cwd} does not exist` }
  }
  const candidates = program.includes('/')
    ? [path.resolve(cwd, program)]
    : (env.PATH ?? DEFAULT_PATH).split(':').map((dir) => path.resolve(cwd, dir || '.', program))
  let sawNotExecutable = false
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) continue
    } catch {
      continue
    }
    try {
      accessSync(candidate, constants.X_OK)
      return undefined
    } catch {
      sawNotExecutable = true
    }
  }
  if (sawNotExecutable) return { code: 'EACCES', message: `${program} is not executable` }
  return program.includes('/')
    ? { code: 'ENOENT', message: `${program} does not exist` }
    : { code: 'ENOENT', message: `${program} was not found in PATH (${env.PATH ?? DEFAULT_PATH})` }
}

function startErrorOf(error: unknown): { code: string; message: string } {
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? 'EUNKNOWN'
  return { code, message: error instanceof Error ? error.message : String(error) }
}
