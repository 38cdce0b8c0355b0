/**
 * How single tasks behave end to end, run by one real `cairn worker` process shared by the file:
 * retries and backoff, exhausted retries, timeouts (the process group is gone afterwards), `when`,
 * max_active_tasks, pools across runs, priority, outputs flowing into downstream templates, and
 * secrets masked in stored logs and outputs.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startTestEngine, taskWritableDir } from '../helpers/engine.ts'
import type { TestEngine } from '../helpers/engine.ts'
import { attemptRows, logLines, maxOverlap, taskRows, waitFor, waitForDags, writeCairnYaml } from '../helpers/run-rows.ts'

const SECRET = 'tok-3f9a1c77e2-SeCrEt'
const NODE = JSON.stringify(process.execPath)
/** Generous: the machine is shared and small. */
const RUN_TIMEOUT_MS = 60_000

/** A script line that writes the time in ms to "$MARKS/<task>.<what>" (GNU date). */
const mark = (what: string): string => `date +%s%3N > "$MARKS/$CAIRN_TASK_ID.${what}"`

function dags(dir: string): Record<string, string> {
  const marks = join(dir, 'files')
  const failUntilThird = `
    params:
      script: |
        echo "attempt $CAIRN_ATTEMPT"
        test "$CAIRN_ATTEMPT" -ge 3`
  return {
    'retry.yaml': `dag: retry
tasks:
  fixed:
    operator: shell
    retries: 3
    retry_delay: 200ms${failUntilThird}
  exponential:
    operator: shell
    retries: 3
    retry_delay: 1s
    retry_backoff: exponential${failUntilThird}
  capped:
    operator: shell
    retries: 3
    retry_delay: 1s
    retry_backoff: exponential
    max_retry_delay: 1s${failUntilThird}
`,
    'doomed.yaml': `dag: doomed
tasks:
  doomed:
    operator: shell
    retries: 2
    retry_delay: 100ms
    params:
      script: |
        echo "try $CAIRN_ATTEMPT"
        exit 3
  after: { operator: noop, depends_on: doomed }
  cleanup: { operator: noop, depends_on: doomed, trigger_rule: one_failed }
`,
    'sleepy.yaml': `dag: sleepy
tasks:
  sleepy:
    operator: shell
    timeout: 1s
    retries: 0
    env: { MARKS: ${JSON.stringify(marks)} }
    params:
      script: |
        sleep 30 &
        echo $! > "$MARKS/background.pid"
        echo $$ > "$MARKS/foreground.pid"
        exec sleep 30
`,
    'gated.yaml': `dag: gated
max_active_runs: 2
params:
  go: { type: boolean, default: false }
tasks:
  gated:
    operator: shell
    when: "{{ params.go }}"
    env: { MARKS: ${JSON.stringify(marks)} }
    params: { command: [sh, -c, 'touch "$MARKS/gated.$CAIRN_RUN_ID"'] }
  all_success: { operator: noop, depends_on: gated }
  none_failed: { operator: noop, depends_on: gated, trigger_rule: none_failed }
  all_skipped: { operator: noop, depends_on: gated, trigger_rule: all_skipped }
  one_success: { operator: noop, depends_on: gated, trigger_rule: one_success }
  all_done: { operator: noop, depends_on: gated, trigger_rule: all_done }
  chained: { operator: noop, depends_on: all_success }
`,
    'capped.yaml': `dag: capped
max_active_tasks: 2
defaults:
  env: { MARKS: ${JSON.stringify(marks)} }
tasks:
${[1, 2, 3, 4, 5, 6].map((i) => `  c${i}: { operator: shell, params: { script: '${mark('start')}; sleep 0.6; ${mark('end')}' } }`).join('\n')}
`,
    ...Object.fromEntries(
      ['a', 'b'].map((side) => [
        `pooled_${side}.yaml`,
        `dag: pooled_${side}
defaults:
  pool: one
  env: { MARKS: ${JSON.stringify(marks)} }
tasks:
  ${side}1: { operator: shell, params: { script: '${mark('start')}; sleep 0.6; ${mark('end')}' } }
  ${side}2: { operator: shell, params: { script: '${mark('start')}; sleep 0.6; ${mark('end')}' } }
`,
      ]),
    ),
    'ranked.yaml': `dag: ranked
max_active_tasks: 1
tasks:
  low: { operator: shell, priority: 1, params: { command: ["true"] } }
  plain: { operator: shell, params: { command: ["true"] } }
  high: { operator: shell, priority: 10, params: { command: ["true"] } }
  mid: { operator: shell, priority: 5, params: { command: ["true"] } }
  negative: { operator: shell, priority: -3, params: { command: ["true"] } }
  mid_too: { operator: shell, priority: 5, params: { command: ["true"] } }
`,
    'outputs.yaml': `dag: outputs
tasks:
  produce:
    operator: shell
    params:
      script: |
        printf '{"word": "hello world", "n": 42, "nested": {"k": "v"}, "quote": "it'"'"'s \\\\"q\\\\""}' > "$CAIRN_OUTPUTS"
  consume:
    operator: shell
    depends_on: produce
    env:
      OUT: ${JSON.stringify(join(marks, 'consume.json'))}
      WORD: "{{ tasks.produce.outputs.word }}"
    params:
      command:
        - ${NODE}
        - -e
        - "require('fs').writeFileSync(process.env.OUT, JSON.stringify({ argv: process.argv.slice(1), env: process.env.WORD }))"
        - "{{ tasks.produce.outputs.word }}"
        - "{{ tasks.produce.outputs.n }}"
        - "{{ tasks.produce.outputs.nested.k }}"
        - "{{ tasks.produce.outputs.nested | json }}"
        - "{{ tasks.produce.outputs.quote }}"
  grandchild:
    operator: shell
    depends_on: consume
    env: { OUT: ${JSON.stringify(join(marks, 'grandchild.txt'))}, N: "{{ tasks.produce.outputs.n }}-{{ tasks.consume.outputs.exit_code }}" }
    params:
      script: printf %s "$N" > "$OUT"
`,
    'secretive.yaml': `dag: secretive
tasks:
  leak:
    operator: shell
    env: { TOKEN: "{{ secrets.token }}", SEEN: ${JSON.stringify(join(marks, 'seen-token'))} }
    params:
      script: |
        echo "the token is $TOKEN"
        echo "on stderr: $TOKEN" >&2
        printf %s "$TOKEN" > "$SEEN"
        test -z "\${CAIRN_SECRET_TOKEN:-}"
        printf '{"token": "%s", "nested": {"line": "x-%s-y"}, "list": ["%s"]}' "$TOKEN" "$TOKEN" "$TOKEN" > "$CAIRN_OUTPUTS"
  in_argv:
    operator: shell
    params: { command: [sh, -c, 'echo "arg: $1"', sh, "{{ secrets.token }}"] }
  failing:
    operator: shell
    retries: 0
    env: { TOKEN: "{{ secrets.token }}" }
    params:
      script: |
        printf '{"token": "%s"}' "$TOKEN" > "$CAIRN_OUTPUTS"
        echo "failing with $TOKEN"
        exit 1
`,
  }
}

// One engine and one worker process for the whole file (the root test's `after` stops them).
const engine: TestEngine = await startTestEngine({ after }, { dags: {}, pools: { one: { slots: 1 } } })
/** Scratch files the task scripts write (paths are baked into the DAG files). */
const files = join(engine.dir, 'files')
// Tasks run as the unprivileged task user (the worker runs as root here).
taskWritableDir(files)
// The DAG files name paths inside the harness's temp dir, so they are written once it exists.
for (const [name, text] of Object.entries(dags(engine.dir))) engine.writeDag(name, text)
// The worker syncs pools from its own cairn.yaml (see writeCairnYaml).
writeCairnYaml(engine.dir, { one: { slots: 1 } })
const dagIds = Object.keys(dags(engine.dir)).map((file) => file.replace(/\.yaml$/, ''))
await waitForDags(engine.db, dagIds)
engine.spawnWorker({ slots: 8, env: { CAIRN_SECRET_TOKEN: SECRET } })

async function runToEnd(dagId: string, params: Record<string, unknown> = {}): Promise<{ runId: string; state: string }> {
  const runId = await engine.trigger(dagId, params)
  return { runId, state: await engine.waitForRun(runId, RUN_TIMEOUT_MS) }
}

test('retries: fixed and exponential backoff (capped by max_retry_delay) until the third attempt succeeds', async () => {
  // Watch next_retry_at while the run goes: it is the delay the engine chose.
  const chosen = new Map<string, number>()
  let watching = true
  const runId = await engine.trigger('retry')
  const watcher = (async () => {
    while (watching) {
      const { rows } = await engine.db.query<{ task_id: string; failures: number; next_retry_at: Date }>(
        `SELECT task_id, failures, next_retry_at FROM cairn.task_instance WHERE run_id = $1 AND state = 'up_for_retry'`,
        [runId],
      )
      for (const r of rows) chosen.set(`${r.task_id}#${r.failures}`, r.next_retry_at.getTime())
      await new Promise((r) => setTimeout(r, 25))
    }
  })()
  const state = await engine.waitForRun(runId, RUN_TIMEOUT_MS).finally(() => (watching = false))
  await watcher
  assert.equal(state, 'success')

  const expected: Record<string, number[]> = { fixed: [200, 200], exponential: [1000, 2000], capped: [1000, 1000] }
  const rows = await taskRows(engine.db, runId)
  for (const [taskId, delays] of Object.entries(expected)) {
    const row = rows.get(taskId)!
    assert.equal(row.state, 'success', taskId)
    assert.equal(row.attempt, 3, taskId)
    assert.equal(row.failures, 2, taskId)
    const attempts = await attemptRows(engine.db, runId, taskId)
    assert.deepEqual(
      attempts.map((a) => [a.attempt, a.state, a.exit_code, a.failure_kind]),
      [
        [1, 'failed', 1, 'exit_code'],
        [2, 'failed', 1, 'exit_code'],
        [3, 'success', null, null],
      ],
      taskId,
    )
    for (const [i, delay] of delays.entries()) {
      const failedAt = attempts[i]!.ended_at!.getTime()
      const gap = attempts[i + 1]!.queued_at.getTime() - failedAt
      // Never early; late only by the scheduler's loop and a loaded machine.
      assert.ok(gap >= delay && gap < delay + 3000, `${taskId}: attempt ${i + 2} queued ${gap} ms after attempt ${i + 1} failed; delay ${delay} ms`)
      const seen = chosen.get(`${taskId}#${i + 1}`)
      if (seen !== undefined) assert.ok(Math.abs(seen - failedAt - delay) <= 100, `${taskId}: next_retry_at ${seen - failedAt} ms after failure ${i + 1}; delay ${delay} ms`)
      else assert.ok(delay < 1000, `${taskId}: a ${delay} ms retry wait was never observed`)
    }
    const lines = await logLines(engine.db, runId, taskId)
    for (const attempt of [1, 2, 3]) assert.ok(lines.some((l) => l.attempt === attempt && l.line === `attempt ${attempt}`), `${taskId}: log of attempt ${attempt}`)
  }
})

test('retries exhausted: the task fails with every failure counted, downstream follows its rule', async () => {
  const { runId, state } = await runToEnd('doomed')
  assert.equal(state, 'failed')
  const rows = await taskRows(engine.db, runId)
  const doomed = rows.get('doomed')!
  assert.deepEqual([doomed.state, doomed.attempt, doomed.failures, doomed.failure_kind, doomed.next_retry_at ?? null], ['failed', 3, 3, 'exit_code', null])
  assert.deepEqual(
    (await attemptRows(engine.db, runId, 'doomed')).map((a) => [a.attempt, a.state, a.exit_code]),
    [
      [1, 'failed', 3],
      [2, 'failed', 3],
      [3, 'failed', 3],
    ],
  )
  assert.equal(rows.get('after')!.state, 'upstream_failed')
  assert.equal(rows.get('cleanup')!.state, 'success')
  const history = await engine.db.query<{ to_state: string }>(`SELECT to_state FROM cairn.state_history WHERE run_id = $1 AND task_id = 'doomed' ORDER BY id`, [runId])
  assert.deepEqual(
    history.rows.map((r) => r.to_state),
    ['queued', 'running', 'up_for_retry', 'queued', 'running', 'up_for_retry', 'queued', 'running', 'failed'],
  )
})

test('timeout: a task over its timeout fails as a timeout within seconds, its processes gone', async () => {
  const started = Date.now()
  const { runId, state } = await runToEnd('sleepy')
  assert.equal(state, 'failed')
  assert.ok(Date.now() - started < 15_000, `the run took ${Date.now() - started} ms`)
  const row = (await taskRows(engine.db, runId)).get('sleepy')!
  assert.deepEqual([row.state, row.failure_kind], ['failed', 'timeout'])
  const [attempt] = await attemptRows(engine.db, runId, 'sleepy')
  const ran = attempt!.ended_at!.getTime() - attempt!.started_at!.getTime()
  assert.ok(ran >= 1000 && ran < 6000, `the attempt ran ${ran} ms with a 1 s timeout`)
  assert.equal(attempt!.failure_kind, 'timeout')
  for (const which of ['foreground', 'background']) {
    const pid = Number(readFileSync(join(files, `${which}.pid`), 'utf8'))
    assert.ok(pid > 1, which)
    await waitFor(`the ${which} sleep (pid ${pid}) to be gone`, async () => (processGone(pid) ? true : undefined), 15_000)
  }
})

/** Gone, or a zombie nobody reaped yet (it runs nothing). */
function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return true
  }
}

test('when: falsy skips the task without running it and each downstream follows its rule; truthy runs it', async () => {
  const skipped = await runToEnd('gated')
  const ran = await runToEnd('gated', { go: true })
  assert.equal(skipped.state, 'success')
  assert.equal(ran.state, 'success')
  assert.deepEqual(await engine.taskStates(skipped.runId), {
    all_done: 'success',
    all_skipped: 'success',
    all_success: 'skipped',
    chained: 'skipped',
    gated: 'skipped',
    none_failed: 'success',
    one_success: 'skipped',
  })
  assert.deepEqual(await engine.taskStates(ran.runId), {
    all_done: 'success',
    all_skipped: 'skipped',
    all_success: 'success',
    chained: 'success',
    gated: 'success',
    none_failed: 'success',
    one_success: 'success',
  })
  assert.equal(existsSync(join(files, `gated.${skipped.runId}`)), false, 'the skipped task ran its command')
  assert.equal(existsSync(join(files, `gated.${ran.runId}`)), true)
})

test('max_active_tasks: 2 never has more than two tasks of the run at once (and does reach two)', async () => {
  const { runId, state } = await runToEnd('capped')
  assert.equal(state, 'success')
  const attempts = await attemptRows(engine.db, runId)
  assert.equal(attempts.length, 6)
  const claimed = attempts.map((a) => ({ start: a.started_at!.getTime(), end: a.ended_at!.getTime() }))
  const scripts = [1, 2, 3, 4, 5, 6].map((i) => readMarks(`c${i}`))
  assert.equal(maxOverlap(claimed), 2, `attempts: ${JSON.stringify(claimed)}`)
  assert.equal(maxOverlap(scripts), 2, `scripts: ${JSON.stringify(scripts)}`)
})

function readMarks(taskId: string): { start: number; end: number } {
  return { start: Number(readFileSync(join(files, `${taskId}.start`), 'utf8')), end: Number(readFileSync(join(files, `${taskId}.end`), 'utf8')) }
}

test('a pool with one slot serialises tasks of two runs of different DAGs', async () => {
  const [a, b] = await Promise.all([runToEnd('pooled_a'), runToEnd('pooled_b')])
  assert.equal(a.state, 'success')
  assert.equal(b.state, 'success')
  const attempts = await attemptRows(engine.db, [a.runId, b.runId])
  assert.equal(attempts.length, 4)
  for (const run of [a, b]) for (const row of (await taskRows(engine.db, run.runId)).values()) assert.equal(row.pool, 'one')
  const claimed = attempts.map((x) => ({ start: x.started_at!.getTime(), end: x.ended_at!.getTime() }))
  const scripts = ['a1', 'a2', 'b1', 'b2'].map(readMarks)
  assert.equal(maxOverlap(claimed), 1, `attempts: ${JSON.stringify(claimed)}`)
  assert.equal(maxOverlap(scripts), 1, `scripts: ${JSON.stringify(scripts)}`)
  // Both runs were in flight together: the pool, not max_active_runs, kept them apart.
  const runs = await engine.db.query<{ started_at: Date; ended_at: Date }>('SELECT started_at, ended_at FROM cairn.run WHERE run_id = ANY($1::text[])', [[a.runId, b.runId]])
  assert.equal(maxOverlap(runs.rows.map((r) => ({ start: r.started_at.getTime(), end: r.ended_at.getTime() }))), 2)
})

test('priority: with one task at a time, higher priority starts first (ties in file order)', async () => {
  const { runId, state } = await runToEnd('ranked')
  assert.equal(state, 'success')
  const attempts = await attemptRows(engine.db, runId)
  const order = attempts.sort((x, y) => x.queued_at.getTime() - y.queued_at.getTime()).map((x) => x.task_id)
  assert.deepEqual(order, ['high', 'mid', 'mid_too', 'low', 'plain', 'negative'])
  const starts = attempts.sort((x, y) => x.started_at!.getTime() - y.started_at!.getTime()).map((x) => x.task_id)
  assert.deepEqual(starts, order)
})

test('outputs written to $CAIRN_OUTPUTS flow into downstream templates (argv, env, grandchildren)', async () => {
  const { runId, state } = await runToEnd('outputs')
  assert.equal(state, 'success')
  const rows = await taskRows(engine.db, runId)
  assert.deepEqual(rows.get('produce')!.outputs, { word: 'hello world', n: 42, nested: { k: 'v' }, quote: `it's "q"`, exit_code: 0 })
  const consumed = JSON.parse(readFileSync(join(files, 'consume.json'), 'utf8')) as unknown
  assert.deepEqual(consumed, { argv: ['hello world', '42', 'v', '{"k":"v"}', `it's "q"`], env: 'hello world' })
  assert.equal(readFileSync(join(files, 'grandchild.txt'), 'utf8'), '42-0')
})

test('a secret used in a task is masked as *** in stored logs, outputs and messages, yet reaches the task', async () => {
  const { runId, state } = await runToEnd('secretive')
  assert.equal(state, 'failed')
  assert.deepEqual(await engine.taskStates(runId), { failing: 'failed', in_argv: 'success', leak: 'success' })
  assert.equal(readFileSync(join(files, 'seen-token'), 'utf8'), SECRET, 'the task got the real value')

  const rows = await taskRows(engine.db, runId)
  assert.deepEqual(rows.get('leak')!.outputs, { token: '***', nested: { line: 'x-***-y' }, list: ['***'], exit_code: 0 })
  assert.deepEqual(rows.get('failing')!.outputs, { token: '***', exit_code: 1 })
  const leak = (await logLines(engine.db, runId, 'leak')).map((l) => `${l.stream}: ${l.line}`)
  assert.ok(leak.includes('stdout: the token is ***'), leak.join('\n'))
  assert.ok(leak.includes('stderr: on stderr: ***'), leak.join('\n'))
  const argv = (await logLines(engine.db, runId, 'in_argv')).map((l) => `${l.stream}: ${l.line}`)
  assert.ok(argv.includes('stdout: arg: ***'), argv.join('\n'))
  assert.ok(argv.some((l) => l.startsWith('log: running command') && l.includes('***')), argv.join('\n'))
  assert.ok((await logLines(engine.db, runId, 'failing')).some((l) => l.line === 'failing with ***'))

  // Nowhere in what the run stored.
  for (const table of ['task_log', 'task_instance', 'attempt', 'state_history']) {
    const { rows: dump } = await engine.db.query<{ text: string }>(`SELECT row_to_json(x)::text AS text FROM cairn.${table} x WHERE run_id = $1`, [runId])
    assert.ok(dump.length > 0, table)
    const leaked = dump.filter((r) => r.text.includes(SECRET))
    assert.deepEqual(leaked, [], `${table} holds the secret`)
  }
})
