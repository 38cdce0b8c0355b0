/**
 * `npm start` as a user meets it: `cairn up` in the checkout, with the repository's own dags/ and
 * cairn.yaml, an embedded Postgres under a fresh CAIRN_HOME. It must say where to look, run the
 * every-minute example (dags/hello.yaml) within its first interval, stop cleanly on Ctrl-C (SIGINT),
 * and a second start must carry on with the same data.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { postmasterPid, processExists, waitFor } from '../helpers/engine-extra.ts'

const repo = new URL('../..', import.meta.url).pathname
const cli = new URL('../../bin/cairn.js', import.meta.url).pathname
const home = mkdtempSync(join(tmpdir(), 'cairn-up-restart-'))
const env: NodeJS.ProcessEnv = { ...process.env, CAIRN_HOME: home, CAIRN_LOG_LEVEL: 'warn' }
for (const name of ['DATABASE_URL', 'CAIRN_DAGS', 'CAIRN_CONFIG', 'CAIRN_PORT']) delete env[name]

interface Up {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exit: Promise<{ code: number | null; signal: string | null }>
}

const started: Up[] = []
/** The uid and gid of Debian's `nobody`. */
const NOBODY = 65534

/** `cairn up` on any free web port (as another user with `as`); resolves once it says it is running. */
async function startUp(as: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {}): Promise<Up> {
  const child = spawn(process.execPath, [cli, 'up', '--port', '0'], { cwd: repo, env, ...as, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d))
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const up: Up = { child, stdout: () => out, stderr: () => err, exit }
  started.push(up)
  await Promise.race([
    waitFor('cairn up to say it is running', () => /stop with Ctrl-C/.test(out), 60_000, 100),
    exit.then((e) => Promise.reject(new Error(`cairn up exited (${e.code ?? e.signal}) before running: ${err}`))),
  ])
  return up
}

/**
 * Ctrl-C: SIGINT, then a clean exit 0. A task of the examples may be running (a canary rollout takes a
 * minute): `cairn up` waits its grace period (30 s) for it, hands it back, and stops Postgres, so allow
 * the grace period plus time to stop.
 */
async function stopUp(up: Up): Promise<void> {
  up.child.kill('SIGINT')
  const result = await Promise.race([up.exit, new Promise((resolve) => setTimeout(resolve, 75_000, 'timeout').unref())])
  assert.deepEqual(result, { code: 0, signal: null }, up.stderr())
}

interface RunJson {
  run_id: string
  state: string
  logical_date: string
  queued_at: string
}

function runs(dagId: string): RunJson[] {
  const r = spawnSync(process.execPath, [cli, 'runs', dagId, '--format', 'json'], { cwd: repo, env, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout) as RunJson[]
}

/** A failed test must not leave a server behind: kill every `cairn up` still running, then the Postgres of `cairnHome`. */
function killLeftovers(cairnHome: string): void {
  for (const up of started) if (up.child.exitCode === null && up.child.signalCode === null) up.child.kill('SIGKILL')
  const pid = postmasterPid(join(cairnHome, 'postgres'))
  if (pid !== undefined && processExists(pid)) process.kill(pid, 'SIGQUIT')
  rmSync(cairnHome, { recursive: true, force: true })
}

after(() => killLeftovers(home))

test('cairn up runs the every-minute example within its first interval, stops on Ctrl-C, and a second start keeps the data', async (t) => {
  const startedAt = Date.now()
  const first = await startUp()
  // It prints where to look: the database, the DAG folder, the state folder and the commands.
  assert.match(first.stdout(), /running on embedded Postgres on port \d+ \(data in .*postgres\)/)
  assert.match(first.stdout(), /DAGs from dags\//)
  assert.match(first.stdout(), new RegExp(`state under ${home.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))
  assert.match(first.stdout(), /npx cairn runs <dag>/)
  const pgPid = postmasterPid(join(home, 'postgres'))
  assert.ok(pgPid !== undefined && processExists(pgPid), 'the embedded Postgres runs')

  // hello.yaml: "* * * * *", catchup none. Its first interval is the minute in progress at start; the run
  // is created when that minute ends, so it must have succeeded within about a minute.
  const firstInterval = Math.floor(startedAt / 60_000) * 60_000
  const run = await waitFor('the first scheduled hello run to succeed', () => runs('hello').find((r) => r.state === 'success'), 90_000, 1000)
  assert.ok(run.run_id.startsWith('hello__scheduled__'), run.run_id)
  const logical = Date.parse(run.logical_date)
  assert.ok(logical >= firstInterval - 60_000 && logical <= firstInterval + 60_000, `logical date ${run.logical_date} is not the first interval`)
  assert.ok(Date.parse(run.queued_at) - (logical + 60_000) < 10_000, `queued ${run.queued_at}, long after its interval ended`)
  t.diagnostic(`start -> first hello run succeeded: ${Date.now() - startedAt} ms`)

  await stopUp(first)
  await waitFor('the embedded Postgres to stop', () => !processExists(pgPid), 10_000, 100)

  const second = await startUp()
  const before = runs('hello').map((r) => r.run_id)
  assert.ok(before.includes(run.run_id), 'the first run is still there after a restart')
  const again = postmasterPid(join(home, 'postgres'))
  assert.ok(again !== undefined && again !== pgPid && processExists(again), 'a new Postgres on the same data dir')
  await stopUp(second)
  await waitFor('the embedded Postgres to stop', () => !processExists(again), 10_000, 100)
})

test('cairn up also runs as an ordinary user: embedded Postgres, a triggered run, Ctrl-C', { skip: process.getuid?.() !== 0 ? 'needs root to start a process as another user (as an ordinary user, the test above already is that case)' : false }, async () => {
  // `nobody` owns nothing but its own CAIRN_HOME; the checkout is only readable to it.
  const userHome = mkdtempSync(join(tmpdir(), 'cairn-up-nobody-'))
  chownSync(userHome, NOBODY, NOBODY)
  const userEnv: NodeJS.ProcessEnv = { ...env, CAIRN_HOME: userHome, HOME: userHome, NODE_COMPILE_CACHE: join(userHome, 'compile-cache') }
  const as = { cwd: repo, env: userEnv, uid: NOBODY, gid: NOBODY }
  try {
    const up = await startUp(as)
    const pid = postmasterPid(join(userHome, 'postgres'))!
    assert.equal(statSync(join(userHome, 'postgres')).uid, NOBODY, "the data dir is the user's own")
    const trigger = spawnSync(process.execPath, [cli, 'trigger', 'hello', '--param', 'greeting=hi there', '--wait'], { ...as, encoding: 'utf8', timeout: 60_000 })
    assert.equal(trigger.status, 0, `${trigger.stdout}\n${trigger.stderr}`)
    await stopUp(up)
    await waitFor('the embedded Postgres to stop', () => !processExists(pid), 10_000, 100)
  } finally {
    killLeftovers(userHome)
  }
})
