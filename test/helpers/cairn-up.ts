/**
 * `cairn up` as a user runs it (`npm start`), from the checkout, for the tests that follow the README: it is
 * started with the given environment, awaited until it says it is running, and stopped with Ctrl-C (SIGINT,
 * then SIGKILL after `stopWithinMs`) when the test ends, then `afterStop` runs (e.g. removing its CAIRN_HOME).
 */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { runCommand, waitFor } from './engine-extra.ts'
import type { CommandResult } from './engine-extra.ts'

const REPO = path.resolve(import.meta.dirname, '../..')
const CLI = path.join(REPO, 'bin/cairn.js')

export interface RunningUp {
  stdout(): string
  stderr(): string
  /** `npx cairn ...` in the checkout with the same environment. */
  cli(args: readonly string[]): Promise<CommandResult>
}

export async function startCairnUp(t: { after(fn: () => Promise<void>): void }, env: NodeJS.ProcessEnv, options: { args?: readonly string[]; stopWithinMs?: number; afterStop?: () => void } = {}): Promise<RunningUp> {
  const up = spawn(process.execPath, [CLI, 'up', ...(options.args ?? ['--port', '0'])], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  up.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
  up.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
  const exited = new Promise<void>((resolve) => up.on('exit', () => resolve()))
  t.after(async () => {
    up.kill('SIGINT')
    const stopped = await Promise.race([exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), options.stopWithinMs ?? 30_000))])
    if (!stopped) up.kill('SIGKILL')
    await exited
    options.afterStop?.()
  })
  await Promise.race([
    waitFor('cairn up to say it is running', () => /stop with Ctrl-C/.test(out), 120_000, 100),
    exited.then(() => Promise.reject(new Error(`cairn up exited before running: ${err}`))),
  ])
  return {
    stdout: () => out,
    stderr: () => err,
    // Asynchronously: the event loop keeps reading cairn up's output meanwhile.
    cli: (args) => runCommand(process.execPath, [CLI, ...args], { cwd: REPO, env }),
  }
}
