/**
 * The inspect and control commands of SPEC section 5 against a real `cairn up` (embedded Postgres,
 * scheduler, worker) running in a temp folder with its own DAGs and CAIRN_HOME. Every command runs
 * as its own CLI process with the same environment, as a user would run it.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { processExists, runCommand, waitFor } from '../helpers/engine-extra.ts'
import { taskWritableDir } from '../helpers/engine.ts'

const main = new URL('../../engine/cli/main.ts', import.meta.url).pathname
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

const dir = mkdtempSync(join(tmpdir(), 'cairn-cli-engine-'))
// Tasks run as the unprivileged task user: the marker's folder must be writable by it (and the gate's visible to it).
const marker = join(taskWritableDir(join(dir, 'marks')), 'flaky-ran-once')
const tickGate = join(dir, 'marks', 'tick-gate')

const DAGS: Record<string, string> = {
  // File order differs from dependency order: `tasks` must list a, b, c.
  'three.yaml': `dag: three
tasks:
  c:
    operator: shell
    depends_on: b
    params:
      script: |
        echo from c
        printf '{"path": "/data/c.csv", "rows": 3, "leak": "cli-only-secret-value"}' > "$CAIRN_OUTPUTS"
  a: { operator: shell, params: { command: [echo, hello from a] } }
  b: { operator: noop, depends_on: a }
`,
  // Fails the first time it ever runs, succeeds afterwards: trigger --wait sees a failure, clear a success.
  'flaky.yaml': `dag: flaky
tasks:
  boom:
    operator: shell
    env: { MARKER: ${JSON.stringify(marker)} }
    params:
      script: |
        if [ -f "$MARKER" ]; then echo second time lucky; else touch "$MARKER"; echo failing now; exit 3; fi
  after: { operator: noop, depends_on: boom }
`,
  'params.yaml': `dag: with_params
params:
  count: { type: integer, minimum: 1, default: 2 }
  label: { type: string, default: none }
tasks:
  show: { operator: shell, params: { command: [echo, "count={{ params.count }} label={{ params.label }}"] } }
`,
  // Prints "tick 1", then waits (up to 60 s) for the test to open the gate before the other ticks.
  'ticker.yaml': `dag: ticker
tasks:
  tick:
    operator: shell
    env: { GATE: ${JSON.stringify(tickGate)} }
    params:
      script: |
        echo tick 1
        i=0; while [ ! -f "$GATE" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
        for i in 2 3 4 5; do echo tick $i; done
`,
  // Output that would drive a terminal: colours, a window title, a carriage return, a C1 CSI.
  'escapes.yaml': `dag: escapes
tasks:
  paint:
    operator: shell
    params:
      script: |
        printf 'red \\033[31mRED\\033[0m\\n'
        printf 'title \\033]0;pwned\\007\\n'
        printf 'cr abc\\rXYZ\\n'
        printf 'c1 \\302\\233 2J\\n'
        printf 'tab\\there\\n'
`,
  'many.yaml': `dag: many
tasks:
  count: { operator: shell, params: { script: "seq 1 1500" } }
`,
  // The sleep runs in the background so that cancel must stop the whole process group, not just the shell.
  'sleepy.yaml': `dag: sleepy
tasks:
  nap: { operator: shell, params: { script: "sleep 30 & echo sleeping as $!; wait" } }
  later: { operator: noop, depends_on: nap }
`,
  'daily.yaml': `dag: daily
schedule: "@daily"
timezone: UTC
start_date: 2026-01-01
paused: true
tasks:
  day: { operator: shell, params: { command: [echo, "day {{ ds }}"] } }
`,
}

mkdirSync(join(dir, 'dags'))
for (const [name, text] of Object.entries(DAGS)) writeFileSync(join(dir, 'dags', name), text)

const env: NodeJS.ProcessEnv = { ...process.env, CAIRN_HOME: join(dir, 'home'), CAIRN_DAGS: 'dags', CAIRN_LOG_LEVEL: 'warn' }
delete env.DATABASE_URL
delete env.CAIRN_CONFIG

interface Result {
  code: number | null
  stdout: string
  stderr: string
}

function cairn(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Result> {
  return runCommand(process.execPath, [main, ...args], { cwd: dir, env: { ...env, ...extraEnv } })
}

async function json<T>(args: string[]): Promise<T> {
  const r = await cairn([...args, '--format', 'json'])
  assert.equal(r.code, 0, `cairn ${args.join(' ')}: ${r.stderr}`)
  return JSON.parse(r.stdout) as T
}

interface RunJson {
  run_id: string
  dag_id: string
  state: string
  logical_date: string
  queued_at: string
  started_at: string | null
  ended_at: string | null
}
interface TaskJson {
  task_id: string
  state: string
  attempts: number
  started_at: string | null
  ended_at: string | null
  outputs: Record<string, unknown>
}

const until = <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000) => waitFor(what, check, timeoutMs, 250)

const runEnded = (runId: string, dagId: string) =>
  until(`run ${runId} to end`, async () => {
    const run = (await json<RunJson[]>(['runs', dagId])).find((r) => r.run_id === runId)
    return run && ['success', 'failed', 'cancelled'].includes(run.state) ? run : undefined
  })

const lastLine = (text: string): string => text.trimEnd().split('\n').at(-1)!

let up: ChildProcess | undefined
let upExit: Promise<{ code: number | null; signal: string | null }> | undefined
let upStderr = ''

before(async () => {
  const child = spawn(process.execPath, [main, 'up', '--slots', '4', '--port', '0'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
  up = child
  upExit = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (upStderr += d))
  await new Promise<void>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`cairn up did not start within 60 s: ${upStderr}`)), 60_000)
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d
      if (/running/.test(out)) {
        clearTimeout(timer)
        resolve()
      }
    })
    void upExit!.then((e) => {
      clearTimeout(timer)
      reject(new Error(`cairn up exited (${e.code ?? e.signal}) before running: ${upStderr}`))
    })
  })
  // The scheduler loads the DAG folder on its first pass.
  await until('the DAGs to load', async () => ((await json<unknown[]>(['dags'])).length === Object.keys(DAGS).length ? true : undefined))
})

after(async () => {
  if (up && up.exitCode === null && up.signalCode === null) {
    up.kill('SIGINT')
    const stopped = await Promise.race([upExit!.then(() => true), later(30_000, false)])
    if (!stopped) up.kill('SIGKILL')
  }
  rmSync(dir, { recursive: true, force: true })
})

test('dags lists every DAG with its paused flag, schedule and file', async () => {
  const dags = await json<Record<string, unknown>[]>(['dags'])
  assert.deepEqual(Object.keys(dags[0]!).sort(), ['dag_id', 'file', 'import_errors', 'paused', 'schedule'])
  const daily = dags.find((d) => d.dag_id === 'daily')
  assert.deepEqual(daily, { dag_id: 'daily', paused: true, schedule: '@daily', file: 'dags/daily.yaml', import_errors: 0 })
  const text = await cairn(['dags'])
  assert.match(text.stdout.split('\n')[0]!, /^DAG\s+PAUSED\s+SCHEDULE\s+FILE\s+ERRORS$/)
})

let threeRun = ''

test('trigger --wait exits 0 when the run succeeds and prints the run id as its last line', async () => {
  const r = await cairn(['trigger', 'three', '--wait'])
  assert.equal(r.code, 0, r.stderr)
  threeRun = lastLine(r.stdout)
  assert.match(threeRun, /^three__manual__/)
  assert.match(r.stderr, /ended success/)
})

test('runs --format json has exactly the SPEC keys, ISO timestamps with milliseconds, newest first', async () => {
  const second = await cairn(['trigger', 'three', '--format', 'json'])
  assert.equal(second.code, 0, second.stderr)
  const triggered = JSON.parse(second.stdout) as Record<string, unknown>
  assert.deepEqual(Object.keys(triggered).sort(), ['run_id', 'state'])
  assert.equal(triggered.state, 'queued')
  const secondId = String(triggered.run_id)
  await runEnded(secondId, 'three')

  const runs = await json<RunJson[]>(['runs', 'three'])
  assert.deepEqual(runs.map((r) => r.run_id), [secondId, threeRun])
  for (const run of runs) {
    assert.deepEqual(Object.keys(run).sort(), ['dag_id', 'ended_at', 'logical_date', 'queued_at', 'run_id', 'started_at', 'state'])
    assert.equal(run.dag_id, 'three')
    assert.equal(run.state, 'success')
    for (const key of ['logical_date', 'queued_at', 'started_at', 'ended_at'] as const) assert.match(String(run[key]), ISO_MS, key)
  }
  assert.deepEqual((await json<RunJson[]>(['runs', 'three', '--limit', '1'])).map((r) => r.run_id), [secondId])
  assert.deepEqual(await json<RunJson[]>(['runs', 'three', '--state', 'failed']), [])

  const text = await cairn(['runs', 'three'])
  const lines = text.stdout.trimEnd().split('\n')
  assert.equal(lines.length, 3)
  assert.match(lines[0]!, /^RUN ID\s+STATE\s+LOGICAL DATE/)
  assert.equal(lines[1]!.indexOf('success'), lines[0]!.indexOf('STATE'), 'columns are aligned')
})

test('tasks --format json lists task instances in dependency order with attempts', async () => {
  const tasks = await json<TaskJson[]>(['tasks', threeRun])
  assert.deepEqual(tasks.map((t) => t.task_id), ['a', 'b', 'c'])
  // a: shell, no $CAIRN_OUTPUTS file; b: noop, publishes nothing; c: writes $CAIRN_OUTPUTS.
  assert.deepEqual(tasks.map((t) => t.outputs), [{ exit_code: 0 }, {}, { path: '/data/c.csv', rows: 3, leak: 'cli-only-secret-value', exit_code: 0 }])
  for (const t of tasks) {
    assert.deepEqual(Object.keys(t).sort(), ['attempts', 'ended_at', 'outputs', 'started_at', 'state', 'task_id'])
    assert.equal(t.state, 'success')
    assert.equal(t.attempts, 1)
    assert.match(String(t.started_at), ISO_MS)
    assert.match(String(t.ended_at), ISO_MS)
  }
  // A secret the CLI's environment knows is masked even when the worker did not know it.
  const masked = await cairn(['tasks', threeRun, '--format', 'json'], { CAIRN_SECRET_EXTRA: 'cli-only-secret-value' })
  assert.equal(masked.code, 0, masked.stderr)
  assert.deepEqual((JSON.parse(masked.stdout) as TaskJson[])[2]!.outputs, { path: '/data/c.csv', rows: 3, leak: '***', exit_code: 0 })
  const text = await cairn(['tasks', threeRun])
  assert.match(text.stdout, /^TASK\s+STATE\s+ATTEMPTS/)
  assert.equal((await cairn(['tasks', 'no-such-run'])).code, 1)
})

test('logs prints the stored lines of the latest attempt', async () => {
  const r = await cairn(['logs', threeRun, 'a'])
  assert.equal(r.code, 0, r.stderr)
  assert.ok(r.stdout.split('\n').includes('hello from a'), r.stdout)
  const lines = (await cairn(['logs', threeRun, 'a', '--format', 'json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  const hello = lines.find((l) => l.line === 'hello from a')
  assert.deepEqual(hello && { ...hello, at: ISO_MS.test(String(hello.at)) }, { attempt: 1, stream: 'stdout', line: 'hello from a', at: true })
  assert.equal((await cairn(['logs', threeRun, 'nope'])).code, 1)
  assert.equal((await cairn(['logs', threeRun, 'a', '--attempt', '2'])).code, 1)
})

test('clear RUN TASK runs that task and its downstream again; clearing a run that succeeded changes nothing', async () => {
  const before = (await json<RunJson[]>(['runs', 'three'])).find((r) => r.run_id === threeRun)!
  const noop = await cairn(['clear', threeRun])
  assert.equal(noop.code, 0, noop.stderr)
  assert.match(noop.stdout, /nothing to clear/)
  assert.deepEqual((await json<RunJson[]>(['runs', 'three'])).find((r) => r.run_id === threeRun), before)

  const r = await cairn(['clear', threeRun, 'b'])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /cleared 2 task instances of run \S+: b, c/)
  assert.equal((await runEnded(threeRun, 'three')).state, 'success')
  assert.deepEqual((await json<TaskJson[]>(['tasks', threeRun])).map((t) => [t.task_id, t.state, t.attempts]), [
    ['a', 'success', 1],
    ['b', 'success', 2],
    ['c', 'success', 2],
  ])
  const unknownTask = await cairn(['clear', threeRun, 'zz'])
  assert.equal(unknownTask.code, 1)
  assert.match(unknownTask.stderr, /has no task "zz"/)
})

test('logs --follow prints lines as the task writes them and exits 0 when it succeeds', async () => {
  const triggered = await cairn(['trigger', 'ticker'])
  assert.equal(triggered.code, 0, triggered.stderr)
  const runId = lastLine(triggered.stdout)
  const seen: string[] = []
  // What the follower had printed when "tick 1" came out, while the task was still waiting at its gate.
  let atFirstTick: { seen: string[]; gateOpen: boolean } | undefined
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [main, 'logs', runId, 'tick', '--follow'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'inherit'] })
    let buffer = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buffer += d
      const parts = buffer.split('\n')
      buffer = parts.pop()!
      for (const line of parts) {
        seen.push(line)
        if (line === 'tick 1') {
          atFirstTick = { seen: [...seen], gateOpen: existsSync(tickGate) }
          // Only now may the task go on: the other ticks do not exist yet, however slowly anything started.
          writeFileSync(tickGate, '')
        }
      }
    })
    child.on('close', resolve)
  })
  assert.equal(code, 0)
  assert.deepEqual(seen.filter((l) => l.startsWith('tick ')), ['tick 1', 'tick 2', 'tick 3', 'tick 4', 'tick 5'])
  // Streamed, not printed at the end: tick 1 reached the follower while the task was blocked before tick 2.
  assert.equal(atFirstTick?.gateOpen, false)
  assert.deepEqual(atFirstTick.seen.filter((l) => l.startsWith('tick ')), ['tick 1'])
})

test('logs --tail N prints the last N lines; --follow starts at the last 1000', async () => {
  const triggered = await cairn(['trigger', 'many', '--wait'])
  assert.equal(triggered.code, 0, triggered.stderr)
  const runId = lastLine(triggered.stdout)
  const numbers = (text: string) => text.split('\n').filter((l) => /^\d+$/.test(l)).map(Number)
  const all = await cairn(['logs', runId, 'count'])
  assert.deepEqual(numbers(all.stdout), Array.from({ length: 1500 }, (_, i) => i + 1))
  const three = await cairn(['logs', runId, 'count', '--tail', '3'])
  assert.equal(three.code, 0, three.stderr)
  assert.deepEqual(three.stdout.trimEnd().split('\n'), ['1498', '1499', '1500'])
  assert.match(three.stderr, /earlier lines of attempt 1 not shown/)
  const followed = await cairn(['logs', runId, 'count', '--follow'])
  assert.equal(followed.code, 0, followed.stderr)
  assert.deepEqual(numbers(followed.stdout), Array.from({ length: 1000 }, (_, i) => i + 501))
  const followedAll = await cairn(['logs', runId, 'count', '--follow', '--tail', 'all'])
  assert.equal(numbers(followedAll.stdout).length, 1500)
  assert.equal((await cairn(['logs', runId, 'count', '--tail', 'some'])).code, 2)
})

test('logs escapes control characters when stdout is a terminal, and prints them as they are when piped', async () => {
  const triggered = await cairn(['trigger', 'escapes', '--wait'])
  assert.equal(triggered.code, 0, triggered.stderr)
  const runId = lastLine(triggered.stdout)
  const piped = await cairn(['logs', runId, 'paint'])
  assert.ok(piped.stdout.includes('red \x1b[31mRED\x1b[0m\n'), JSON.stringify(piped.stdout))
  assert.ok(piped.stdout.includes('title \x1b]0;pwned\x07\n'))
  assert.ok(piped.stdout.includes('c1 \u009b 2J\n'))

  // A pseudo-terminal: util-linux script(1) runs the command on one and copies what it printed.
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`
  const command = [process.execPath, main, 'logs', runId, 'paint'].map(quote).join(' ')
  const tty = await runCommand('script', ['-q', '-e', '-c', command, '/dev/null'], { cwd: dir, env })
  assert.equal(tty.code, 0, tty.stderr)
  const lines = tty.stdout.split('\r\n')
  assert.ok(lines.includes('red \\x1b[31mRED\\x1b[0m'), JSON.stringify(tty.stdout))
  assert.ok(lines.includes('title \\x1b]0;pwned\\x07'))
  assert.ok(lines.includes('cr abc\\rXYZ'))
  assert.ok(lines.includes('c1 \\u009b 2J'))
  assert.ok(lines.includes('tab\there'), 'a tab stays a tab')
  assert.doesNotMatch(tty.stdout, /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/, 'no control character reached the terminal')
})

test('trigger --wait exits 1 when the run fails, and clear makes it run again', async () => {
  const failed = await cairn(['trigger', 'flaky', '--wait'])
  assert.equal(failed.code, 1, failed.stderr)
  const runId = lastLine(failed.stdout)
  assert.match(failed.stderr, /ended failed/)
  assert.match(failed.stderr, /boom: failed/)
  assert.deepEqual((await json<TaskJson[]>(['tasks', runId])).map((t) => [t.task_id, t.state, t.attempts]), [
    ['boom', 'failed', 1],
    ['after', 'upstream_failed', 0],
  ])

  const cleared = await cairn(['clear', runId])
  assert.equal(cleared.code, 0, cleared.stderr)
  assert.match(cleared.stdout, /cleared 2 task instances/)
  const run = await runEnded(runId, 'flaky')
  assert.equal(run.state, 'success')
  assert.deepEqual((await json<TaskJson[]>(['tasks', runId])).map((t) => [t.task_id, t.state, t.attempts]), [
    ['boom', 'success', 2],
    ['after', 'success', 1],
  ])
  assert.match((await cairn(['logs', runId, 'boom'])).stdout, /second time lucky/)
  assert.match((await cairn(['logs', runId, 'boom', '--attempt', '1'])).stdout, /failing now/)
  const unknown = await cairn(['clear', 'no-such-run'])
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /no run "no-such-run"/)
})

test('trigger --param: valid values are coerced, invalid ones exit 1 and create no run', async () => {
  const ok = await cairn(['trigger', 'with_params', '--param', 'count=3', '--param', 'label=hi there', '--wait'])
  assert.equal(ok.code, 0, ok.stderr)
  const runId = lastLine(ok.stdout)
  assert.ok((await cairn(['logs', runId, 'show'])).stdout.includes('count=3 label=hi there'))

  for (const bad of [['count=abc'], ['count=0'], ['colour=red']]) {
    const r = await cairn(['trigger', 'with_params', ...bad.flatMap((p) => ['--param', p])])
    assert.equal(r.code, 1, `${bad.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, /parameter/)
    assert.equal(r.stdout, '')
  }
  const malformed = await cairn(['trigger', 'with_params', '--param', 'count'])
  assert.equal(malformed.code, 2)
  assert.equal((await json<RunJson[]>(['runs', 'with_params'])).length, 1)

  const unknown = await cairn(['trigger', 'no_such_dag'])
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /no DAG "no_such_dag"/)
})

test('cancel stops a running task and its process group', async () => {
  const triggered = await cairn(['trigger', 'sleepy'])
  const runId = lastLine(triggered.stdout)
  const pid = await until('the sleep to start', async () => {
    const match = /sleeping as (\d+)/.exec((await cairn(['logs', runId, 'nap'])).stdout)
    return match ? Number(match[1]) : undefined
  })
  assert.equal(processExists(pid), true)
  const r = await cairn(['cancel', runId])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /cancelled run/)
  const run = await runEnded(runId, 'sleepy')
  assert.equal(run.state, 'cancelled')
  const tasks = await json<TaskJson[]>(['tasks', runId])
  assert.deepEqual(tasks.map((t) => [t.task_id, t.state]), [
    ['nap', 'cancelled'],
    ['later', 'cancelled'],
  ])
  assert.equal(tasks[1]!.started_at, null)
  assert.equal(tasks[1]!.attempts, 0)
  await until('the sleep process to be gone', async () => (processExists(pid) ? undefined : true), 15_000)

  const again = await cairn(['cancel', runId])
  assert.equal(again.code, 0)
  assert.match(again.stdout, /already ended \(cancelled\)/)
  assert.equal((await cairn(['cancel', 'no-such-run'])).code, 1)
})

test('pause and unpause flip the paused flag; an unknown DAG exits 1', async () => {
  const paused = async () => (await json<{ dag_id: string; paused: boolean }[]>(['dags'])).find((d) => d.dag_id === 'three')!.paused
  assert.equal(await paused(), false)
  assert.equal((await cairn(['pause', 'three'])).code, 0)
  assert.equal(await paused(), true)
  const r = await cairn(['unpause', 'three'])
  assert.equal(r.code, 0)
  assert.match(r.stdout, /unpaused DAG three/)
  assert.equal(await paused(), false)
  const unknown = await cairn(['pause', 'no_such_dag'])
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /no DAG "no_such_dag"/)
})

test('backfill creates one run per daily interval, and nothing when run again', async () => {
  const first = await cairn(['backfill', 'daily', '--from', '2026-01-01', '--to', '2026-01-03', '--format', 'json'])
  assert.equal(first.code, 0, first.stderr)
  assert.deepEqual({ ...JSON.parse(first.stdout), run_ids: undefined }, { dag_id: 'daily', created: 3, skipped: 0, run_ids: undefined })
  const again = await cairn(['backfill', 'daily', '--from', '2026-01-01', '--to', '2026-01-03'])
  assert.equal(again.code, 0, again.stderr)
  assert.equal(again.stdout, '')
  assert.match(again.stderr, /0 runs created, 3 skipped/)

  const runs = await until('the backfill runs to finish', async () => {
    const all = await json<RunJson[]>(['runs', 'daily'])
    return all.length === 3 && all.every((r) => r.state === 'success') ? all : undefined
  })
  assert.deepEqual(runs.map((r) => r.logical_date).sort(), ['2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z', '2026-01-03T00:00:00.000Z'])
  assert.ok(runs.every((r) => r.run_id.startsWith('daily__backfill__')))
  assert.equal((await cairn(['backfill', 'three', '--from', '2026-01-01', '--to', '2026-01-02'])).code, 1, 'a DAG without a schedule')
  assert.equal((await cairn(['backfill', 'daily', '--from', '2026-01-01'])).code, 2)
})

test('usage errors exit 2', async () => {
  for (const args of [['runs'], ['runs', 'three', '--format', 'xml'], ['runs', 'three', '--limit', '0'], ['tasks', 'a', 'b'], ['logs', 'r'], ['trigger', 'three', '--logical-date', 'soon']]) {
    const r = await cairn(args)
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
  }
  const help = await cairn(['trigger', '--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /Exit codes/)
})

test('every command exits 2 when no database is reachable', async () => {
  const home = join(dir, 'empty-home')
  for (const args of [['runs', 'three'], ['trigger', 'three'], ['dags'], ['cancel', 'x']]) {
    const r = await cairn(args, { CAIRN_HOME: home })
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, /cairn up/)
  }
})

test('cairn up stops on SIGINT and exits 0 within 30 s', async () => {
  up!.kill('SIGINT')
  const result = await Promise.race([upExit!, later(30_000, 'timeout' as const)])
  assert.deepEqual(result, { code: 0, signal: null }, upStderr)
})

/** Resolves to `value` after `ms`, without keeping the test process alive once everything else is done. */
function later<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(resolve, ms, value).unref())
}

