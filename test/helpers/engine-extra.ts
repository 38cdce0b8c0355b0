/**
 * Pieces for crash tests that startTestEngine does not give: a Postgres of the test's own that can be
 * stopped and started again on the same port and data dir, `cairn worker` processes on any URL, a
 * cleanup stack that tears down in reverse order of setup, and small polling helpers.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startEmbeddedPostgres } from '../../engine/store/embedded.ts'
import type { EmbeddedPostgres } from '../../engine/store/embedded.ts'
import { stopChild } from './engine.ts'
import type { TestEngine } from './engine.ts'
import { testLogger } from './postgres.ts'

const MAIN = new URL('../../engine/cli/main.ts', import.meta.url).pathname

/** Cleanup steps run in reverse order of registration (processes before the server they use), errors ignored. */
export function cleanupStack(t: { after(fn: () => Promise<void>): void }): (step: () => Promise<unknown> | unknown) => void {
  const steps: (() => Promise<unknown> | unknown)[] = []
  t.after(async () => {
    for (const step of steps.reverse()) {
      try {
        await step()
      } catch {
        // keep tearing down the rest
      }
    }
  })
  return (step) => void steps.push(step)
}

export interface RestartablePostgres {
  readonly url: string
  readonly port: number
  /** Fast shutdown: every client is disconnected. */
  stop(): Promise<void>
  /** Starts it again on the same port and data dir. */
  start(): Promise<void>
  readonly dir: string
}

/** A fresh cluster in a temp dir of its own (not the shared test server), stopped and removed by `defer`. */
export async function startRestartablePostgres(defer: (step: () => Promise<unknown> | unknown) => void): Promise<RestartablePostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-restart-pg-'))
  // As root the server runs as user postgres, which must be able to enter the dir.
  chmodSync(dir, 0o755)
  const dataDir = join(dir, 'data')
  const log = testLogger()
  let server: EmbeddedPostgres | undefined = await startEmbeddedPostgres({ dataDir, log, ephemeral: true })
  const { url, port } = server
  defer(async () => {
    await server?.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    url,
    port,
    dir,
    async stop() {
      await server?.stop()
      server = undefined
    },
    async start() {
      if (server) throw new Error('already running')
      server = await startEmbeddedPostgres({ dataDir, log, ephemeral: true, port })
    },
  }
}

/** A real `cairn worker` process on `url`, stopped (SIGTERM, then SIGKILL) by `defer`. */
export function spawnWorkerProcess(defer: (step: () => Promise<unknown> | unknown) => void, options: { url: string; cwd: string; args?: string[]; env?: Record<string, string> }): ChildProcess {
  return spawnCairnProcess(defer, 'worker', options)
}

/** A real `cairn COMMAND` process (worker, scheduler, web) on the database at `url`, stopped by `defer`. */
export function spawnCairnProcess(defer: (step: () => Promise<unknown> | unknown) => void, command: string, options: { url: string; cwd: string; args?: string[]; env?: Record<string, string> }): ChildProcess {
  const child = spawn(process.execPath, [MAIN, command, ...(options.args ?? [])], {
    cwd: options.cwd,
    env: { ...process.env, DATABASE_URL: options.url, CAIRN_HOME: join(options.cwd, 'home'), CAIRN_LOG_LEVEL: process.env.CAIRN_TEST_LOG || 'warn', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout?.resume()
  child.stderr?.on('data', (chunk: Buffer) => {
    if (process.env.CAIRN_TEST_LOG) process.stderr.write(chunk)
  })
  defer(() => stopChild(child))
  return child
}

/** Polls `check` every `everyMs` until it returns something other than undefined/false; throws after `timeoutMs`. */
export interface CommandResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs a program to its end and collects what it printed (`stdin`, when given, is written and closed). */
export function runCommand(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; stdin?: string } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    if (options.stdin !== undefined) child.stdin!.end(options.stdin)
  })
}

export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Whether a process with this pid exists (signal 0 reaches it; a zombie still counts). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The postmaster's pid from a data dir's postmaster.pid, or undefined when there is none. */
export function postmasterPid(dataDir: string): number | undefined {
  const file = join(dataDir, 'postmaster.pid')
  return existsSync(file) ? Number(readFileSync(file, 'utf8').split('\n')[0]) : undefined
}

/**
 * Whether a process of group `pgid` is still alive. Zombies do not count: a task process killed with its
 * worker is reparented to PID 1, which may take a while to reap it, but it no longer runs.
 */
export function groupAlive(pgid: number): boolean {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    try {
      process.kill(-pgid, 0)
      return true
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'EPERM'
    }
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
    } catch {
      continue
    }
    // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true
  }
  return false
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/** Sends `signal` to a process unless it has ended already; resolves once it has exited. */
export function killAndWait(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const gone = exited(child)
  if (child.exitCode === null && child.signalCode === null) child.kill(signal)
  return gone
}

/** `engine.spawnWorker(options)` for the length of `t`: SIGKILLed (and awaited) when `t` ends, unless it has ended before. */
export function spawnWorkerFor(t: { after(fn: () => Promise<void>): void }, engine: Pick<TestEngine, 'spawnWorker'>, options: Parameters<TestEngine['spawnWorker']>[0]): ChildProcess {
  const child = engine.spawnWorker(options)
  t.after(() => killAndWait(child, 'SIGKILL'))
  return child
}
