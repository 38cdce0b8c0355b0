import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { shell } from '../../operators/shell.ts'
import type { ShellParams } from '../../operators/shell.ts'
import { noop } from '../../operators/noop.ts'
import { taskAbort } from '../../operators/define.ts'
import type { OperatorContext, OperatorResult } from '../../operators/define.ts'
import { runProcess } from '../../engine/process/run-process.ts'
import { createLineSplitter, MAX_LINE_BYTES } from '../../engine/process/split-lines.ts'
import { renderTaskTemplates } from '../../engine/template/render.ts'
import type { TemplateVariables } from '../../engine/template/render.ts'
import { createSecretStore } from '../../engine/secrets/secrets.ts'

const NODE = process.execPath
const scratch = mkdtempSync(path.join(tmpdir(), 'cairn-shell-test-'))
after(() => rmSync(scratch, { recursive: true, force: true }))

interface Harness {
  ctx: OperatorContext
  lines: { stream: 'stdout' | 'stderr'; line: string }[]
  logs: string[]
  controller: AbortController
}

function harness(overrides: Partial<OperatorContext> = {}): Harness {
  const workdir = mkdtempSync(path.join(scratch, 'attempt-'))
  const controller = new AbortController()
  const lines: Harness['lines'] = []
  const logs: string[] = []
  const ctx: OperatorContext = {
    dagId: 'shell_dag',
    runId: 'run-1',
    taskId: 'task_a',
    attempt: 1,
    interval: { start: new Date(0), end: new Date(0), logicalDate: new Date(0) },
    signal: controller.signal,
    env: {},
    workerEnv: { PATH: process.env.PATH, HOME: process.env.HOME },
    workdir,
    killGraceMs: 2_000,
    log: {
      info: (message) => logs.push(`info ${message}`),
      warn: (message) => logs.push(`warn ${message}`),
      error: (message) => logs.push(`error ${message}`),
    },
    output: (stream, line) => void lines.push({ stream, line }),
    ...overrides,
  }
  return { ctx, lines, logs, controller }
}

async function runShell(params: ShellParams, h: Harness): Promise<OperatorResult> {
  return shell.run(params, h.ctx)
}

function variables(params: Record<string, unknown>): TemplateVariables {
  return {
    dag: { id: 'shell_dag' },
    run: { id: 'run-1', logical_date: '2026-01-01T00:00:00.000Z', data_interval_start: '2026-01-01T00:00:00.000Z', data_interval_end: '2026-01-02T00:00:00.000Z', is_latest: true },
    task: { id: 'task_a', attempt: 1 },
    ds: '2026-01-01',
    ds_nodash: '20260101',
    params,
    tasks: {},
    secrets: createSecretStore({ env: {} }),
  }
}

/** A process is gone when /proc has no entry or only a zombie waiting for a parent to reap it. */
function isGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state === 'Z' || state === 'X'
  } catch {
    return true
  }
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (check()) return true
    await sleep(20)
  }
  return check()
}

function readPid(file: string): number {
  const pid = Number(readFileSync(file, 'utf8').trim())
  assert.ok(Number.isInteger(pid) && pid > 1, `${file} holds a pid`)
  return pid
}

function pwnedPath(): string {
  return path.join(scratch, `pwned-${process.pid}`)
}

function hostileValues(): string[] {
  const pwned = pwnedPath()
  return [
    `$(touch ${pwned})`,
    `\`touch ${pwned}\``,
    `; touch ${pwned}; echo `,
    `&& touch ${pwned} ||`,
    `| touch ${pwned}`,
    `' " \\ '\\''`,
    'line one\nline two\n',
    '{{ 7*7 }}',
    '{% raw %}{{ dag.id }}{% endraw %}',
    '*',
    '--help',
    '-e',
    '',
    '   spaces   ',
    '$HOME ${PATH} %s %n',
    'ünïcödé 😀 \t tab',
  ]
}

const WRITE_ARGV = `require('node:fs').writeFileSync(process.env.CAIRN_OUTPUTS, JSON.stringify({ argv: process.argv.slice(1) }))`

test('command: hostile values reach the program as exact arguments, never through a shell', async () => {
  const hostile = hostileValues()
  const h = harness()
  const result = await runShell({ command: [NODE, '-e', WRITE_ARGV, '--', ...hostile] }, h)
  assert.ok(result.ok, JSON.stringify(result))
  assert.deepEqual(result.outputs.argv, hostile)
  assert.equal(result.outputs.exit_code, 0)
  assert.equal(existsSync(pwnedPath()), false)
})

test('command: templated hostile run params are rendered once and passed literally', async () => {
  const hostile = hostileValues()
  const params = Object.fromEntries(hostile.map((value, i) => [`v${i}`, value]))
  const rendered = renderTaskTemplates(
    { params: { command: [NODE, '-e', WRITE_ARGV, '--', ...hostile.map((_, i) => `{{ params.v${i} }}`), 'at-{{ ds }}'] } },
    variables(params),
  )
  assert.ok(rendered.ok, rendered.ok ? '' : rendered.message)
  const h = harness()
  const result = await runShell(rendered.params as ShellParams, h)
  assert.ok(result.ok, JSON.stringify(result))
  assert.deepEqual(result.outputs.argv, [...hostile, 'at-2026-01-01'])
  assert.equal(existsSync(pwnedPath()), false)
})

test('script: hostile values reach the script only through env, also those of templates in the script text', async () => {
  for (const value of hostileValues()) {
    const rendered = renderTaskTemplates(
      {
        params: { script: `printf '%s' "$HOSTILE" > received\nprintf '%s' '{{ params.v }}' > literal\n` },
        env: { HOSTILE: '{{ params.v }}' },
        literalParams: shell.literalParams,
      },
      variables({ v: value }),
    )
    assert.ok(rendered.ok, rendered.ok ? '' : rendered.message)
    const h = harness({ env: rendered.env })
    const result = await runShell(rendered.params as ShellParams, h)
    assert.ok(result.ok, JSON.stringify(result))
    assert.equal(readFileSync(path.join(h.ctx.workdir, 'received'), 'utf8'), value, JSON.stringify(value))
    assert.equal(readFileSync(path.join(h.ctx.workdir, 'literal'), 'utf8'), value, JSON.stringify(value))
  }
  assert.equal(existsSync(pwnedPath()), false)
})

test('environment: the worker env minus cairn secrets, then the task env, then CAIRN_* variables', async () => {
  const h = harness({
    attempt: 2,
    workerEnv: {
      PATH: process.env.PATH,
      KEEP_ME: 'kept',
      DATABASE_URL: 'postgres://cairn:secret@db/cairn',
      CAIRN_SECRET_API: 'api-secret',
      CAIRN_HOME: '/var/lib/cairn',
    },
    env: { TASK_VAR: 'from task', CAIRN_RUN_ID: 'spoofed' },
  })
  const dump = `require('node:fs').writeFileSync(process.env.CAIRN_OUTPUTS, JSON.stringify({ env: process.env, cwd: process.cwd() }))`
  const result = await runShell({ command: [NODE, '-e', dump] }, h)
  assert.ok(result.ok, JSON.stringify(result))
  const env = result.outputs.env as Record<string, string>
  assert.equal(env.KEEP_ME, 'kept')
  assert.equal(env.CAIRN_HOME, '/var/lib/cairn')
  assert.equal(env.DATABASE_URL, undefined)
  assert.equal(env.CAIRN_SECRET_API, undefined)
  assert.equal(env.TASK_VAR, 'from task')
  assert.equal(env.CAIRN_DAG_ID, 'shell_dag')
  assert.equal(env.CAIRN_RUN_ID, 'run-1')
  assert.equal(env.CAIRN_TASK_ID, 'task_a')
  assert.equal(env.CAIRN_ATTEMPT, '2')
  assert.equal(path.dirname(env.CAIRN_OUTPUTS!), h.ctx.workdir)
  assert.equal(result.outputs.cwd, h.ctx.workdir)
})

test('outputs: the JSON object in $CAIRN_OUTPUTS is read back, exit_code added; workdir param is created', async () => {
  const h = harness()
  const result = await runShell(
    { script: `echo '{"rows": 3, "exit_code": 99, "nested": {"a": [1, "x"]}}' > "$CAIRN_OUTPUTS"\npwd\n`, workdir: 'sub/dir' },
    h,
  )
  assert.ok(result.ok, JSON.stringify(result))
  assert.deepEqual(result.outputs, { rows: 3, exit_code: 0, nested: { a: [1, 'x'] } })
  assert.deepEqual(h.lines, [{ stream: 'stdout', line: path.join(h.ctx.workdir, 'sub/dir') }])

  const none = await runShell({ command: ['true'] }, harness())
  assert.deepEqual(none, { ok: true, outputs: { exit_code: 0 } })
})

test('outputs: a file that is not a JSON object fails the task without retry', async () => {
  const cases: [string, RegExp][] = [
    [`echo '[1, 2]' > "$CAIRN_OUTPUTS"`, /must hold a JSON object, got an array/],
    [`echo '42' > "$CAIRN_OUTPUTS"`, /must hold a JSON object, got number/],
    [`echo 'null' > "$CAIRN_OUTPUTS"`, /must hold a JSON object, got null/],
    [`echo '{"a": ' > "$CAIRN_OUTPUTS"`, /does not hold valid JSON/],
    [`mkdir "$CAIRN_OUTPUTS"`, /is not a regular file/],
  ]
  for (const [script, message] of cases) {
    const result = await runShell({ script }, harness())
    assert.equal(result.ok, false, script)
    if (result.ok) continue
    assert.equal(result.kind, 'exit_code')
    assert.equal(result.retryable, false)
    assert.match(result.message, message)
    assert.equal(result.outputs?.exit_code, 0)
  }
})

test('a non-zero exit fails the attempt as exit_code, retryable, with stderr streamed', async () => {
  const h = harness()
  const result = await runShell({ script: `echo '{"partial": true}' > "$CAIRN_OUTPUTS"\necho to-stderr >&2\nfalse\necho unreachable\n` }, h)
  assert.equal(result.ok, false)
  if (result.ok) return
  assert.equal(result.kind, 'exit_code')
  assert.equal(result.retryable, true)
  assert.match(result.message, /exited with code 1/)
  assert.deepEqual(result.outputs, { partial: true, exit_code: 1 })
  assert.deepEqual(h.lines, [{ stream: 'stderr', line: 'to-stderr' }], 'sh -e stops at the first failing command')

  const three = await runShell({ command: ['sh', '-c', 'exit 3'] }, harness())
  assert.equal(!three.ok && three.kind, 'exit_code')
  assert.equal(three.ok ? undefined : three.outputs?.exit_code, 3)
})

test('a program that cannot start is reported, not thrown', async () => {
  const missing = await runShell({ command: ['cairn-no-such-program-xyz', 'a'] }, harness())
  assert.deepEqual(
    missing.ok ? missing : { kind: missing.kind, retryable: missing.retryable, found: /not found in PATH/.test(missing.message) },
    { kind: 'infrastructure', retryable: false, found: true },
  )
  const nul = await runShell({ command: ['echo', 'a\0b'] }, harness())
  assert.equal(nul.ok ? undefined : nul.kind, 'invalid_params')
  const both = await runShell({ command: ['echo'], script: 'echo' }, harness())
  assert.equal(both.ok ? undefined : both.kind, 'invalid_params')
})

test('timeout stops the whole process group, grandchild included, within about a second', async () => {
  const h = harness()
  const script = [
    'echo $$ > main.pid',
    `sh -c 'echo $$ > child.pid; sleep 30 & echo $! > grandchild.pid; wait' &`,
    'sleep 30',
  ].join('\n')
  const running = runShell({ script }, h)
  const pidFile = (name: string) => path.join(h.ctx.workdir, name)
  assert.ok(await waitFor(() => existsSync(pidFile('grandchild.pid')) && readFileSync(pidFile('grandchild.pid'), 'utf8').endsWith('\n'), 5_000))
  const pids = ['main.pid', 'child.pid', 'grandchild.pid'].map((name) => readPid(pidFile(name)))
  assert.ok(pids.every((pid) => !isGone(pid)))

  const abortedAt = Date.now()
  h.controller.abort(taskAbort('timeout', 'the task exceeded its timeout of 1s'))
  const result = await running
  const elapsed = Date.now() - abortedAt
  assert.ok(elapsed < 1_000, `stopped after ${elapsed} ms`)
  assert.deepEqual(
    result.ok ? result : { kind: result.kind, retryable: result.retryable, message: result.message },
    { kind: 'timeout', retryable: true, message: 'the task exceeded its timeout of 1s' },
  )
  assert.ok(await waitFor(() => pids.every(isGone), 1_000), 'every process of the group is gone')
})

test('a process that ignores SIGTERM is killed after killGraceMs', async () => {
  const h = harness({ killGraceMs: 300 })
  const running = runShell({ script: `trap '' TERM\necho $$ > main.pid\nsleep 30 &\necho $! > bg.pid\nwait\n` }, h)
  const bg = path.join(h.ctx.workdir, 'bg.pid')
  assert.ok(await waitFor(() => existsSync(bg) && readFileSync(bg, 'utf8').endsWith('\n'), 5_000))
  const pids = [readPid(path.join(h.ctx.workdir, 'main.pid')), readPid(bg)]
  const abortedAt = Date.now()
  h.controller.abort(taskAbort('timeout', 'timed out'))
  const result = await running
  const elapsed = Date.now() - abortedAt
  assert.ok(elapsed >= 250 && elapsed < 1_500, `stopped after ${elapsed} ms`)
  assert.equal(result.ok ? undefined : result.kind, 'timeout')
  assert.ok(await waitFor(() => pids.every(isGone), 1_000))
})

test('cancel: not retryable; a signal aborted before the start runs nothing; shutdown is infrastructure', async () => {
  const h = harness()
  const running = runShell({ command: ['sleep', '30'] }, h)
  await sleep(100)
  h.controller.abort(taskAbort('cancelled', 'run cancelled by alice'))
  const result = await running
  assert.deepEqual(
    result.ok ? result : { kind: result.kind, retryable: result.retryable, message: result.message },
    { kind: 'cancelled', retryable: false, message: 'run cancelled by alice' },
  )

  const plain = harness()
  const plainRun = runShell({ command: ['sleep', '30'] }, plain)
  await sleep(100)
  plain.controller.abort()
  const plainResult = await plainRun
  assert.equal(plainResult.ok ? undefined : plainResult.kind, 'cancelled')

  const early = harness()
  early.controller.abort(taskAbort('cancelled', 'too late'))
  const earlyResult = await runShell({ script: 'touch ran' }, early)
  assert.equal(earlyResult.ok ? undefined : earlyResult.kind, 'cancelled')
  assert.equal(existsSync(path.join(early.ctx.workdir, 'ran')), false)

  const drain = harness()
  const drainRun = runShell({ command: ['sleep', '30'] }, drain)
  await sleep(100)
  drain.controller.abort(taskAbort('shutdown', 'worker drained'))
  const drainResult = await drainRun
  assert.deepEqual(drainResult.ok ? drainResult : [drainResult.kind, drainResult.retryable], ['infrastructure', true])
})

test('a worker killed with SIGKILL takes its task processes with it', async () => {
  const runProcessUrl = pathToFileURL(path.resolve(import.meta.dirname, '../../engine/process/run-process.ts')).href
  // Two tasks at once: a plain `sleep 30` (the direct child, which pdeathsig covers) and a script
  // whose background `sleep` is a grandchild of the worker (which only the watchdog covers).
  const worker = `
    import { runProcess } from ${JSON.stringify(runProcessUrl)}
    const env = { PATH: process.env.PATH }
    const onLine = (_stream, line) => console.log(line)
    runProcess({ argv: ['sleep', '30'], env, cwd: '/', onLine, onSpawn: (pid) => console.log('pid ' + pid) })
    runProcess({ argv: ['/bin/sh', '-c', 'sleep 30 & echo pid $!; exec sleep 31'], env, cwd: '/', onLine, onSpawn: (pid) => console.log('pid ' + pid) })
  `
  const child = spawn(NODE, ['--input-type=module', '-e', worker], { stdio: ['ignore', 'pipe', 'inherit'] })
  const pids: number[] = []
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (text: string) => {
    for (const match of text.matchAll(/^pid (\d+)$/gm)) pids.push(Number(match[1]))
  })
  try {
    assert.ok(await waitFor(() => pids.length === 3, 10_000), `worker started its tasks (${pids.join(', ')})`)
    await sleep(100)
    assert.ok(pids.every((pid) => !isGone(pid)))
    const killedAt = Date.now()
    child.kill('SIGKILL')
    const gone = await waitFor(() => pids.every(isGone), 1_000)
    assert.ok(gone, `processes ${pids.filter((pid) => !isGone(pid)).join(', ')} outlived the worker`)
    assert.ok(Date.now() - killedAt <= 1_100)
  } finally {
    child.kill('SIGKILL')
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  }
})

test('10 MB of output is streamed line by line while the program still runs', async () => {
  const lineCount = 100_000
  const program = `
    const body = 'x'.repeat(90)
    let chunk = ''
    for (let i = 0; i < ${lineCount}; i++) {
      chunk += 'line ' + String(i).padStart(6, '0') + ' ' + body + '\\n'
      if (chunk.length > 1 << 20) { process.stdout.write(chunk); chunk = '' }
    }
    process.stdout.write(chunk)
    process.stdout.write('y'.repeat(1 << 20) + '\\n')
    process.stdout.write(Buffer.from([0x00, 0xff, 0x41, 0x0d, 0x0a]))
    process.stdout.write('END\\n')
    setTimeout(() => {}, 30000)
  `
  const controller = new AbortController()
  let count = 0
  let bytes = 0
  let first: string | undefined
  let last: string | undefined
  const tail: string[] = []
  const result = await runProcess({
    argv: [NODE, '-e', program],
    env: { PATH: process.env.PATH ?? '' },
    cwd: scratch,
    signal: controller.signal,
    killGraceMs: 1_000,
    onLine(stream, line) {
      assert.equal(stream, 'stdout')
      if (line.startsWith('line ')) {
        count++
        bytes += line.length + 1
        first ??= line
        last = line
      } else {
        tail.push(line)
        if (line === 'END') controller.abort(taskAbort('cancelled', 'seen enough'))
      }
    },
  })
  // The program never exits by itself: every line arrived while it was running.
  assert.equal(result.aborted, true)
  assert.equal(count, lineCount)
  assert.ok(bytes >= 10_000_000, `${bytes} bytes`)
  assert.equal(first, `line 000000 ${'x'.repeat(90)}`)
  assert.equal(last, `line 099999 ${'x'.repeat(90)}`)
  assert.equal(tail.length, 3)
  assert.ok(tail[0]!.startsWith('y'.repeat(1000)))
  assert.ok(tail[0]!.length < MAX_LINE_BYTES + 100, `long line capped (${tail[0]!.length})`)
  assert.match(tail[0]!, /… \[line truncated: \d+ more bytes\]$/)
  assert.equal(tail[1], '\uFFFD\uFFFDA')
  assert.equal(tail[2], 'END')
})

test('partial lines across writes, CRLF, UTF-8 split across chunks, and a last line without newline', async () => {
  const lines: string[] = []
  const result = await runProcess({
    argv: [NODE, '-e', `process.stdout.write('abc'); setTimeout(() => { process.stdout.write('def\\r\\nlast'); process.stderr.write('err') }, 100)`],
    env: {},
    cwd: scratch,
    onLine: (stream, line) => void lines.push(`${stream}:${line}`),
  })
  assert.deepEqual(result, { exitCode: 0, signal: null, aborted: false })
  assert.deepEqual(lines.sort(), ['stderr:err', 'stdout:abcdef', 'stdout:last'])

  const split: string[] = []
  const splitter = createLineSplitter((line) => split.push(line), 8)
  const euro = Buffer.from('€', 'utf8')
  splitter.push(Buffer.concat([Buffer.from('a'), euro.subarray(0, 1)]))
  splitter.push(Buffer.concat([euro.subarray(1), Buffer.from('b\n')]))
  splitter.push(Buffer.from('1234567€€€\nshort'))
  splitter.end()
  splitter.end()
  assert.deepEqual(split, ['a€b', '1234567… [line truncated: 9 more bytes]', 'short'])
})

test('a program that leaves a background job behind: the task ends with its main program', async () => {
  const h = harness({ killGraceMs: 500 })
  const started = Date.now()
  const result = await runShell({ script: 'sleep 30 > /dev/null 2>&1 &\necho $! > bg.pid\necho done\n' }, h)
  assert.ok(result.ok, JSON.stringify(result))
  assert.ok(Date.now() - started < 1_000)
  const bg = readPid(path.join(h.ctx.workdir, 'bg.pid'))
  assert.ok(await waitFor(() => isGone(bg), 1_000), 'the background job was stopped')
})

test('noop runs and publishes nothing', async () => {
  assert.deepEqual(await noop.run(), { ok: true, outputs: {} })
})
