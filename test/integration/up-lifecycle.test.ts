/**
 * How `cairn up` stops and survives: one Ctrl-C drains within the grace period, a second one during
 * the drain hands running tasks back and still stops the embedded Postgres, the scheduler creates no
 * runs while draining, `npm start` passes SIGTERM on, and a postmaster killed with SIGKILL is started
 * again while a task that finishes during the outage is recorded once and not run again.
 * Real `cairn up` processes, each in a folder of its own with its own embedded Postgres.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { Server } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { groupAlive, postmasterPid, processExists, waitFor } from '../helpers/engine-extra.ts'
import { testLogger } from '../helpers/postgres.ts'
import { taskWritableDir } from '../helpers/engine.ts'
import { startEmbeddedPostgres } from '../../engine/store/embedded.ts'
import { readEmbeddedState, readEmbeddedUrl } from '../../engine/store/embedded-state.ts'

const repo = new URL('../..', import.meta.url).pathname
const cli = new URL('../../bin/cairn.js', import.meta.url).pathname
/** cairn counts the same signal twice within this long once (npm forwards the terminal's Ctrl-C). */
const REPEAT_MS = 1000

interface Up {
  child: ChildProcess
  dir: string
  dataDir: string
  env: NodeJS.ProcessEnv
  stdout: () => string
  stderr: () => string
  exit: Promise<{ code: number | null; signal: string | null }>
  webUrl: string
}

const homes: string[] = []
const children: ChildProcess[] = []

after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  for (const dir of homes) {
    const dataDir = join(dir, 'home', 'postgres')
    let owner: unknown = null
    try {
      owner = JSON.parse(readFileSync(join(dataDir, 'cairn-embedded.json'), 'utf8')).ownerPid
    } catch {
      // no cluster was made
    }
    if (typeof owner === 'number' && processExists(owner)) process.kill(owner, 'SIGKILL')
    const pid = postmasterPid(dataDir)
    if (pid !== undefined && processExists(pid)) process.kill(pid, 'SIGQUIT')
    rmSync(dir, { recursive: true, force: true })
  }
})

/** A folder with dags/ (the given files) and a cairn.yaml; CAIRN_HOME under it. */
function project(dags: Record<string, string>): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-up-lifecycle-'))
  // As root the embedded server runs as user postgres, which must be able to enter the folder.
  chmodSync(dir, 0o755)
  homes.push(dir)
  mkdirSync(join(dir, 'dags'))
  for (const [name, text] of Object.entries(dags)) writeFileSync(join(dir, 'dags', name), text)
  writeFileSync(join(dir, 'cairn.yaml'), 'pools: {}\n')
  const env: NodeJS.ProcessEnv = { ...process.env, CAIRN_HOME: join(dir, 'home'), CAIRN_LOG_LEVEL: process.env.CAIRN_TEST_LOG || 'warn' }
  for (const name of ['DATABASE_URL', 'CAIRN_DAGS', 'CAIRN_CONFIG', 'CAIRN_PORT']) delete env[name]
  return { dir, env }
}

function track(child: ChildProcess): { stdout: () => string; stderr: () => string; exit: Promise<{ code: number | null; signal: string | null }> } {
  children.push(child)
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d
    if (process.env.CAIRN_TEST_LOG) process.stderr.write(d)
  })
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  return { stdout: () => out, stderr: () => err, exit }
}

async function startUp(dags: Record<string, string>, args: string[] = []): Promise<Up> {
  const { dir, env } = project(dags)
  const child = spawn(process.execPath, [cli, 'up', '--port', '0', ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const io = track(child)
  await Promise.race([
    waitFor('cairn up to say it is running', () => /stop with Ctrl-C/.test(io.stdout()), 90_000, 100),
    io.exit.then((e) => Promise.reject(new Error(`cairn up exited (${e.code ?? e.signal}) before running: ${io.stderr()}`))),
  ])
  const webUrl = /web on (http:\/\/\S+\/) /.exec(io.stdout())![1]!
  return { child, dir, dataDir: join(dir, 'home', 'postgres'), env, webUrl, ...io }
}

function cairn(up: Up, args: string[]): string {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: up.dir, env: up.env, encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, `cairn ${args.join(' ')}: ${r.stdout}\n${r.stderr}`)
  return r.stdout
}

const trigger = (up: Up, dag: string): string => cairn(up, ['trigger', dag]).trim().split('\n').pop()!

/** Resolves with the exit once it happens within `ms`, else 'timeout'. */
function exitWithin(up: Up, ms: number): Promise<{ code: number | null; signal: string | null } | 'timeout'> {
  return Promise.race([up.exit, sleep(ms, 'timeout' as const)])
}

/** Queries the cluster of a `cairn up` that has exited, by starting it for a moment. */
async function afterwards<T>(up: Up, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const server = await startEmbeddedPostgres({ dataDir: up.dataDir, log: testLogger() })
  const client = new pg.Client({ connectionString: server.url })
  try {
    await client.connect()
    return await fn(client)
  } finally {
    await client.end().catch(() => undefined)
    await server.stop()
  }
}

/** A client on the database of a running `cairn up`. */
async function connect(up: Up): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: (await readEmbeddedUrl(up.dataDir))! })
  client.on('error', () => {})
  await client.connect()
  return client
}

function ledger(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []
}

/** A shell task that appends `start <attempt>` and `end <attempt>` to $LEDGER around `sleep SECONDS`. */
const sleeper = (dag: string, seconds: number, ledgerFile: string) => `dag: ${dag}
tasks:
  nap:
    operator: shell
    env: { LEDGER: "${ledgerFile}" }
    params:
      script: |
        echo "start $CAIRN_ATTEMPT $$" >> "$LEDGER"
        sleep ${seconds}
        echo "end $CAIRN_ATTEMPT $$" >> "$LEDGER"
`

/** A ledger file in a folder of its own that the unprivileged task user may write (removed after the tests). */
function newLedger(): string {
  const scratch = mkdtempSync(join(tmpdir(), 'cairn-ledger-'))
  homes.push(scratch)
  return join(taskWritableDir(join(scratch, 'shared')), 'ledger')
}

test('one Ctrl-C: cairn up says what it waits for, lets the running task finish within the grace period and exits cleanly', async () => {
  const file = newLedger()
  const up = await startUp({ 'nap.yaml': sleeper('nap', 3, file) })
  const runId = trigger(up, 'nap')
  await waitFor('the task to start', () => ledger(file).length > 0, 30_000, 50)
  const pgPid = postmasterPid(up.dataDir)!
  const signalled = Date.now()
  up.child.kill('SIGINT')
  await waitFor('cairn up to say what it waits for', () => up.stderr().includes('cairn: stopping: waiting up to 30 s for 1 running task; Ctrl-C again to stop now'), 10_000, 50)
  assert.deepEqual(await exitWithin(up, 30_000), { code: 0, signal: null }, up.stderr())
  const tookMs = Date.now() - signalled
  assert.ok(tookMs < 30_000, `exit ${tookMs} ms after SIGINT, beyond the grace period`)
  assert.match(up.stderr(), /cairn: stopped\n$/)
  assert.doesNotMatch(up.stderr(), /handing back/)
  assert.ok(!processExists(pgPid), 'the embedded Postgres stopped')
  assert.deepEqual(ledger(file).map((l) => l.split(' ').slice(0, 2).join(' ')), ['start 1', 'end 1'])
  const rows = await afterwards(up, async (c) => ({
    attempts: (await c.query('SELECT attempt, state FROM cairn.attempt WHERE run_id = $1', [runId])).rows,
    run: (await c.query('SELECT state FROM cairn.run WHERE run_id = $1', [runId])).rows[0],
  }))
  assert.deepEqual(rows, { attempts: [{ attempt: 1, state: 'success' }], run: { state: 'success' } })
})

/** SIGINT, then waits until the worker of `up` says in the database that it drains. */
async function startDraining(up: Up): Promise<number> {
  const client = await connect(up)
  try {
    const at = Date.now()
    up.child.kill('SIGINT')
    await waitFor('the worker to drain', async () => (await client.query(`SELECT 1 FROM cairn.worker WHERE state = 'draining'`)).rows.length > 0, 15_000, 100)
    return at
  } finally {
    await client.end().catch(() => undefined)
  }
}

test('a second Ctrl-C during the drain hands the running task back, stops the embedded Postgres and exits', async () => {
  const file = newLedger()
  const up = await startUp({ 'long.yaml': sleeper('long', 300, file) })
  const runId = trigger(up, 'long')
  await waitFor('the task to start', () => ledger(file).length > 0, 30_000, 50)
  const taskPid = Number(ledger(file)[0]!.split(' ')[2])
  const pgPid = postmasterPid(up.dataDir)!
  const firstAt = await startDraining(up)
  assert.equal(up.child.exitCode, null, 'still draining: the task runs for minutes and the grace period is 30 s')
  await sleep(Math.max(0, firstAt + REPEAT_MS + 100 - Date.now()))
  const secondAt = Date.now()
  up.child.kill('SIGINT')
  assert.deepEqual(await exitWithin(up, 25_000), { code: 0, signal: null }, up.stderr())
  const tookMs = Date.now() - secondAt
  assert.ok(!processExists(pgPid), 'the embedded Postgres stopped')
  assert.equal((await readEmbeddedState(up.dataDir))?.ownerPid, null, 'the cluster is recorded as not running')
  assert.ok(!groupAlive(taskPid), "the task's processes were stopped")
  assert.match(up.stderr(), /cairn: stopping: waiting up to 30 s for 1 running task; Ctrl-C again to stop now\n/)
  assert.match(up.stderr(), /cairn: stopping now: handing back 1 running task\n/)
  assert.match(up.stderr(), /cairn: stopped\n$/)

  const rows = await afterwards(up, async (c) => ({
    instance: (await c.query('SELECT state, attempt, failures FROM cairn.task_instance WHERE run_id = $1', [runId])).rows,
    attempts: (await c.query('SELECT attempt, state, failure_kind FROM cairn.attempt WHERE run_id = $1', [runId])).rows,
    history: (await c.query(`SELECT to_state FROM cairn.state_history WHERE run_id = $1 AND task_id = 'nap' ORDER BY id`, [runId])).rows.map((r) => r.to_state),
    jobs: Number((await c.query(`SELECT count(*) AS n FROM pgboss.job WHERE state = 'created' AND data->>'runId' = $1`, [runId])).rows[0].n),
  }))
  // Handed back: queued again with no failure counted, and a queue job waiting for the next worker.
  assert.deepEqual(rows, {
    instance: [{ state: 'queued', attempt: 1, failures: 0 }],
    attempts: [{ attempt: 1, state: 'queued', failure_kind: null }],
    history: ['queued', 'running', 'queued'],
    jobs: 1,
  })
  assert.ok(tookMs < 20_000, `exit ${tookMs} ms after the second Ctrl-C`)
})

test('the scheduler of cairn up creates no runs while its worker drains', async () => {
  const file = newLedger()
  const up = await startUp({ 'long.yaml': sleeper('long', 300, file) })
  const runId = trigger(up, 'long')
  await waitFor('the task to start', () => ledger(file).length > 0, 30_000, 50)
  const firstAt = await startDraining(up)
  // While it drains, a DAG appears with an interval long due: a scheduler still at work would load it
  // (the folder is checked every 2 s) and create its run within a pass.
  writeFileSync(join(up.dir, 'dags', 'due.yaml'), `dag: due\nschedule: "@hourly"\nstart_date: "2026-01-01T00:00:00Z"\ntasks:\n  nothing: { operator: noop }\n`)
  const client = await connect(up)
  let created: unknown[] = []
  try {
    const deadline = Date.now() + 8000
    while (Date.now() < deadline && created.length === 0) {
      created = (await client.query(`SELECT run_id FROM cairn.run WHERE run_id <> $1`, [runId])).rows
      await sleep(200)
    }
  } finally {
    await client.end().catch(() => undefined)
  }
  assert.equal(up.child.exitCode, null, 'still draining: the task runs for minutes and the grace period is 30 s')
  assert.deepEqual(created, [], 'no run was created while draining')
  await sleep(Math.max(0, firstAt + REPEAT_MS + 100 - Date.now()))
  up.child.kill('SIGINT')
  assert.deepEqual(await exitWithin(up, 25_000), { code: 0, signal: null }, up.stderr())
})

test('npm start: a terminal Ctrl-C (the whole process group) counts once, and a SIGTERM sent to npm reaches cairn', { skip: spawnSync('npm', ['--version']).status !== 0 && process.env.CI !== 'true' ? 'npm is not on PATH' : false }, async () => {
  const file = newLedger()
  const { dir, env } = project({ 'long.yaml': sleeper('long', 300, file) })
  const npmEnv = { ...env, CAIRN_DAGS: join(dir, 'dags'), CAIRN_CONFIG: join(dir, 'cairn.yaml') }
  // A process group of its own, as a terminal gives the foreground job.
  const child = spawn('npm', ['start', '--silent', '--', '--port', '0'], { cwd: repo, env: npmEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const io = track(child)
  const dataDir = join(dir, 'home', 'postgres')
  await Promise.race([
    waitFor('cairn up to say it is running', () => /stop with Ctrl-C/.test(io.stdout()), 90_000, 100),
    io.exit.then((e) => Promise.reject(new Error(`npm start exited (${e.code ?? e.signal}) before running: ${io.stderr()}`))),
  ])
  const pgPid = postmasterPid(dataDir)!
  const cairnPid = (await readEmbeddedState(dataDir))!.ownerPid!
  const r = spawnSync(process.execPath, [cli, 'trigger', 'long'], { cwd: dir, env: npmEnv, encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, r.stderr)
  await waitFor('the task to start', () => ledger(file).length > 0, 30_000, 50)

  // Ctrl-C: the terminal signals npm and cairn, and npm forwards its copy to cairn.
  process.kill(-child.pid!, 'SIGINT')
  await waitFor('cairn to start draining', () => io.stderr().includes('Ctrl-C again to stop now'), 15_000, 50)
  await sleep(REPEAT_MS + 500)
  assert.doesNotMatch(io.stderr(), /stopping now/, "npm's forwarded copy of the Ctrl-C did not count as a second one")
  assert.ok(processExists(cairnPid), 'cairn drains')

  // A service manager stopping npm: the signal must reach cairn (npm runs the script in a shell unless it execs).
  child.kill('SIGTERM')
  await waitFor('cairn to exit', () => !processExists(cairnPid), 30_000, 100).catch(() => undefined)
  assert.ok(!processExists(cairnPid), `cairn (pid ${cairnPid}) still runs after npm got SIGTERM`)
  assert.ok(!processExists(pgPid), 'the embedded Postgres stopped')
  assert.match(io.stderr(), /cairn: stopping now: handing back 1 running task\n/)
  assert.match(io.stderr(), /cairn: stopped/)
})

/** Holds a TCP port on 127.0.0.1 (so the embedded Postgres cannot start again yet); retries while it is taken. */
async function holdPort(port: number, timeoutMs: number): Promise<Server> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    // Clients that reach it are hung up on at once (close() would wait for them).
    const server = createServer((socket) => socket.destroy())
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false))
      server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(true))
    })
    if (ok) return server
    if (Date.now() > deadline) throw new Error(`port ${port} stayed taken`)
    await sleep(5)
  }
}

async function health(url: string): Promise<number> {
  try {
    return (await fetch(`${url}healthz`, { signal: AbortSignal.timeout(5000) })).status
  } catch {
    return 0
  }
}

test('kill -9 of the embedded postmaster: cairn up starts it again, and a task that finished during the outage is recorded once and not run again', async (t) => {
  const file = newLedger()
  const go = join(dirname(file), 'go')
  // The task ends when the test says so (once the database is gone), printing on the way.
  const up = await startUp(
    {
      'outage.yaml': `dag: outage
tasks:
  work:
    operator: shell
    retries: 2
    retry_delay: 1s
    env: { LEDGER: "${file}", GO: "${go}" }
    params:
      script: |
        echo "start $CAIRN_ATTEMPT" >> "$LEDGER"
        echo "before the outage"
        while [ ! -f "$GO" ]; do sleep 0.05; done
        echo "during the outage"
        echo "end $CAIRN_ATTEMPT" >> "$LEDGER"
  next:
    operator: shell
    depends_on: work
    env: { LEDGER: "${file}" }
    params:
      script: echo "next $CAIRN_ATTEMPT" >> "$LEDGER"
`,
    },
    // Aggressive loss detection: an attempt whose heartbeats did not resume would be declared lost and run again.
    ['--heartbeat', '0.5', '--lost-after', '3'],
  )
  const runId = trigger(up, 'outage')
  await waitFor('the task to start', () => ledger(file).length > 0, 30_000, 50)
  assert.equal(await health(up.webUrl), 200)
  const { port } = (await readEmbeddedState(up.dataDir))!
  const pgPid = postmasterPid(up.dataDir)!
  const killedAt = Date.now()
  process.kill(pgPid, 'SIGKILL')
  // Keep the port so the outage lasts until the task has finished.
  const held = await holdPort(port!, 10_000)
  let releasedAt: number
  try {
    await waitFor('/healthz to report the outage', async () => (await health(up.webUrl)) === 503, 10_000, 100)
    writeFileSync(go, '')
    await waitFor('the task to finish', () => ledger(file).includes('end 1'), 30_000, 50)
    // Well past --lost-after without the database.
    await sleep(4000)
    assert.equal(await health(up.webUrl), 503)
  } finally {
    await new Promise((resolve) => held.close(resolve))
    releasedAt = Date.now()
  }
  await waitFor('/healthz to answer 200 again', async () => (await health(up.webUrl)) === 200, 30_000, 100)
  const healthyMs = Date.now() - releasedAt
  const newPid = postmasterPid(up.dataDir)!
  assert.notEqual(newPid, pgPid)
  assert.ok(processExists(newPid), 'a new postmaster runs')

  const client = await connect(up)
  try {
    const state = await waitFor(
      'the run to end',
      async () => {
        const s = (await client.query<{ state: string }>('SELECT state FROM cairn.run WHERE run_id = $1', [runId])).rows[0]?.state
        return s === 'success' || s === 'failed' ? s : undefined
      },
      30_000,
      100,
    )
    assert.equal(state, 'success')
    // Past --lost-after again after the database came back: the attempt stays recorded as it is.
    await sleep(4000)
    const attempts = await client.query('SELECT task_id, attempt, state, failure_kind FROM cairn.attempt WHERE run_id = $1 ORDER BY task_id, attempt', [runId])
    assert.deepEqual(attempts.rows, [
      { task_id: 'next', attempt: 1, state: 'success', failure_kind: null },
      { task_id: 'work', attempt: 1, state: 'success', failure_kind: null },
    ])
    const history = await client.query(`SELECT to_state FROM cairn.state_history WHERE run_id = $1 AND task_id = 'work' ORDER BY id`, [runId])
    assert.deepEqual(history.rows.map((r) => r.to_state), ['queued', 'running', 'success'])
    const logs = await client.query(`SELECT line FROM cairn.task_log WHERE run_id = $1 AND task_id = 'work' AND stream = 'stdout' ORDER BY id`, [runId])
    assert.deepEqual(logs.rows.map((r) => r.line), ['before the outage', 'during the outage'], 'log lines printed during the outage were kept and stored')
  } finally {
    await client.end()
  }
  // `next` went through the queue after the restart: pg-boss recovered too.
  assert.deepEqual(ledger(file), ['start 1', 'end 1', 'next 1'], 'the task ran once, then its downstream task')
  t.diagnostic(`kill -9 -> port released ${releasedAt - killedAt} ms; released -> /healthz 200 in ${healthyMs} ms`)

  const signalled = Date.now()
  up.child.kill('SIGINT')
  assert.deepEqual(await exitWithin(up, 30_000), { code: 0, signal: null }, up.stderr())
  t.diagnostic(`SIGINT -> exit ${Date.now() - signalled} ms`)
  assert.ok(!processExists(newPid), 'the restarted Postgres stopped')
})
