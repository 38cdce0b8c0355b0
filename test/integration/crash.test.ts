/**
 * Crashes with real processes and a real Postgres: a worker SIGKILLed mid-task, Postgres restarted
 * mid-run, and two schedulers racing on one database through 200 cron ticks.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startTestEngine, taskWritableDir } from '../helpers/engine.ts'
import { cleanupStack, exited, groupAlive, spawnCairnProcess, spawnWorkerProcess, startRestartablePostgres, waitFor } from '../helpers/engine-extra.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { startBoss } from '../../engine/queue/task-queue.ts'
import { startScheduler } from '../../engine/scheduler/scheduler.ts'
import type { Scheduler } from '../../engine/scheduler/scheduler.ts'
import { finishAttempt, heartbeat } from '../../engine/store/attempts.ts'
import { getDagVersion } from '../../engine/store/dags.ts'
import { triggerRun } from '../../engine/store/control.ts'

/** One line per event a task writes to its ledger: `start|end <task> <attempt> <pid> <ms>`. */
interface LedgerLine {
  event: string
  task: string
  attempt: number
  pid: number
  at: number
}

function readLedger(file: string): LedgerLine[] {
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.endsWith('\t.')) // only complete lines
    .map((line) => {
      const [event, task, attempt, pid, at] = line.split('\t')
      return { event: event!, task: task!, attempt: Number(attempt), pid: Number(pid), at: Number(at) }
    })
}

/**
 * A script that logs its start and end to $LEDGER around `sleep SECONDS`, and first records an
 * `overlap` line for every earlier attempt's process group of the same task that is still alive.
 */
function ledgerScript(seconds: number, indent: number): string {
  const lines = [
    `for p in $(awk -F '\\t' -v t="$CAIRN_TASK_ID" '$1 == "start" && $2 == t { print $4 }' "$LEDGER"); do`,
    `  if kill -0 "-$p" 2>/dev/null; then printf 'overlap\\t%s\\t%s\\t%s\\t%s\\t.\\n' "$CAIRN_TASK_ID" "$CAIRN_ATTEMPT" "$p" "$(date +%s%3N)" >> "$LEDGER"; fi`,
    `done`,
    `printf 'start\\t%s\\t%s\\t%s\\t%s\\t.\\n' "$CAIRN_TASK_ID" "$CAIRN_ATTEMPT" "$$" "$(date +%s%3N)" >> "$LEDGER"`,
    `sleep ${seconds}`,
    `printf 'end\\t%s\\t%s\\t%s\\t%s\\t.\\n' "$CAIRN_TASK_ID" "$CAIRN_ATTEMPT" "$$" "$(date +%s%3N)" >> "$LEDGER"`,
  ]
  return lines.map((line) => `\n${' '.repeat(indent)}${line}`).join('')
}

interface AttemptRow {
  task_id: string
  attempt: number
  state: string
  claim_id: string | null
  worker_id: string | null
  failure_kind: string | null
  heartbeat_at: Date | null
  started_at: Date | null
  ended_at: Date | null
}

async function attempts(db: Db, runId: string): Promise<AttemptRow[]> {
  const { rows } = await db.query<AttemptRow>(
    'SELECT task_id, attempt, state, claim_id, worker_id, failure_kind, heartbeat_at, started_at, ended_at FROM cairn.attempt WHERE run_id = $1 ORDER BY task_id, attempt',
    [runId],
  )
  return rows
}

test('a worker SIGKILLed mid-task: its attempt is declared lost and retried elsewhere, never overlapping, and its late writes are refused', async (t) => {
  // Reverse order: the engine and its workers stop before the ledger's folder goes.
  const defer = cleanupStack(t)
  const scratch = mkdtempSync(join(tmpdir(), 'cairn-crash-ledger-'))
  defer(() => rmSync(scratch, { recursive: true, force: true }))
  // Tasks run as the unprivileged task user: the ledger's folder must be writable by it.
  const ledger = join(taskWritableDir(join(scratch, 'shared')), 'ledger')
  const lostAfterMs = 3000
  const engine = await startTestEngine({ after: (fn) => defer(fn) }, {
    dags: {
      'crashy.yaml': `dag: crashy
tasks:
  slow:
    operator: shell
    retries: 2
    retry_delay: 500ms
    env: { LEDGER: "${ledger}" }
    params:
      script: |${ledgerScript(3, 8)}
`,
    },
    scheduler: { lostAfterMs, loopMs: 200 },
  })
  const workerA = engine.spawnWorker({ args: ['--heartbeat', '0.5'] })
  const runId = await engine.trigger('crashy')

  const first = await waitFor('attempt 1 to start', () => readLedger(ledger).find((l) => l.event === 'start' && l.attempt === 1), 30_000)
  // Let a heartbeat or two land, so the attempt is alive when its worker dies.
  await sleep(700)
  const attempt1 = (await attempts(engine.db, runId))[0]!
  assert.equal(attempt1.state, 'running')
  assert.ok(attempt1.claim_id)
  const killedAt = Date.now()
  workerA.kill('SIGKILL')
  await exited(workerA)
  // The task's process group dies with its worker (pdeathsig + watchdog), long before anyone retries it.
  const groupGoneAt = await waitFor('attempt 1 process group to die', () => (groupAlive(first.pid) ? undefined : Date.now()), 5_000, 10)

  const workerB = engine.spawnWorker({ args: ['--heartbeat', '0.5'] })
  const lostRow = await waitFor(
    'attempt 1 to be declared lost',
    async () => (await attempts(engine.db, runId)).find((a) => a.attempt === 1 && a.state === 'lost'),
    20_000,
  )
  const second = await waitFor('attempt 2 to start', () => readLedger(ledger).find((l) => l.event === 'start' && l.attempt === 2), 30_000)

  // Worker A's late writes, made while attempt 2 runs: every one is refused and changes nothing.
  const snapshot = async () => ({
    attempts: (await attempts(engine.db, runId)).map((a) => ({ ...a, heartbeat_at: a.attempt === 1 ? a.heartbeat_at : null })),
    instance: (await engine.db.query('SELECT state, attempt, failures, outputs FROM cairn.task_instance WHERE run_id = $1', [runId])).rows,
    history: (await engine.db.query('SELECT count(*)::int AS n FROM cairn.state_history WHERE run_id = $1', [runId])).rows,
  })
  const running = (await attempts(engine.db, runId)).find((a) => a.attempt === 2)!
  assert.equal(running.state, 'running')
  assert.notEqual(running.claim_id, attempt1.claim_id)
  assert.notEqual(running.worker_id, attempt1.worker_id)
  const before = await snapshot()
  const version = await engine.db.query<{ version_id: string }>('SELECT version_id FROM cairn.run WHERE run_id = $1', [runId])
  const task = (await getDagVersion(engine.db, Number(version.rows[0]!.version_id))).tasks.find((x) => x.id === 'slow')!
  const late = [
    await engine.db.tx((q) => finishAttempt(q, attempt1.claim_id!, task, { kind: 'success', outputs: { from: 'the dead worker' } }, new Date())),
    await engine.db.tx((q) => finishAttempt(q, attempt1.claim_id!, task, { kind: 'failed', failure: 'exit_code', retryable: false, message: 'late failure', exitCode: 1 }, new Date())),
    await engine.db.tx((q) => finishAttempt(q, attempt1.claim_id!, task, { kind: 'handed_back', reason: 'late drain' }, new Date())),
  ]
  assert.deepEqual(late, [undefined, undefined, undefined])
  assert.equal((await heartbeat(engine.db, [attempt1.claim_id!], new Date())).size, 0)
  assert.deepEqual(await snapshot(), before)

  assert.equal(await engine.waitForRun(runId, 30_000), 'success')
  assert.equal(workerB.exitCode, null, 'worker B is still running')

  const rows = await attempts(engine.db, runId)
  assert.deepEqual(
    rows.map((a) => [a.attempt, a.state, a.failure_kind]),
    [
      [1, 'lost', 'lost'],
      [2, 'success', null],
    ],
  )
  // The fenced writes after the run ended too.
  assert.equal(await engine.db.tx((q) => finishAttempt(q, attempt1.claim_id!, task, { kind: 'success', outputs: {} }, new Date())), undefined)
  assert.deepEqual(await engine.taskStates(runId), { slow: 'success' })
  const instance = await engine.db.query<{ attempt: number; failures: number; outputs: unknown }>('SELECT attempt, failures, outputs FROM cairn.task_instance WHERE run_id = $1', [runId])
  assert.deepEqual(instance.rows[0], { attempt: 2, failures: 1, outputs: { exit_code: 0 } })
  const history = await engine.db.query<{ to_state: string }>(`SELECT to_state FROM cairn.state_history WHERE run_id = $1 AND task_id = 'slow' ORDER BY id`, [runId])
  assert.deepEqual(
    history.rows.map((r) => r.to_state),
    ['queued', 'running', 'up_for_retry', 'queued', 'running', 'success'],
  )

  // The ledger: attempt 1 never finished (its process died with worker A), attempt 2 ran alone.
  const lines = readLedger(ledger)
  assert.deepEqual(
    lines.map((l) => `${l.event} ${l.attempt}`),
    ['start 1', 'start 2', 'end 2'],
  )
  assert.ok(groupGoneAt < second.at, 'attempt 1 processes were gone before attempt 2 started')
  assert.ok(lostRow.ended_at!.getTime() - killedAt >= lostAfterMs - 600, 'not declared lost before lostAfterMs of silence')
  t.diagnostic(
    `kill -> task group gone ${groupGoneAt - killedAt} ms; kill -> declared lost ${lostRow.ended_at!.getTime() - killedAt} ms (lostAfterMs ${lostAfterMs}); kill -> attempt 2 started ${second.at - killedAt} ms`,
  )
})

/**
 * A chain of shell tasks (each logs to a ledger around `sleep SECONDS`) on a Postgres of the test's own,
 * with a `cairn scheduler` process and a `cairn worker` process; returns with a run triggered.
 */
async function chainOnRestartablePostgres(t: { after(fn: () => Promise<void>): void }, options: { tasks: string[]; seconds: number; retries: number; lostAfterMs: number }) {
  const defer = cleanupStack(t)
  const pg = await startRestartablePostgres(defer)
  const log = testLogger()
  const dir = join(pg.dir, 'engine')
  const dagsFolder = join(dir, 'dags')
  mkdirSync(dagsFolder, { recursive: true })
  // Tasks run as the unprivileged task user: the ledger's folder must be writable by it.
  const ledger = join(taskWritableDir(join(dir, 'shared')), 'ledger')
  const { tasks } = options
  writeFileSync(
    join(dagsFolder, 'chain.yaml'),
    `dag: chain
defaults: { retries: ${options.retries}, retry_delay: 1s }
tasks:
${tasks
  .map(
    (id, i) => `  ${id}:
    operator: shell
${i > 0 ? `    depends_on: ${tasks[i - 1]}\n` : ''}    env: { LEDGER: "${ledger}" }
    params:
      script: |${ledgerScript(options.seconds, 8)}
`,
  )
  .join('')}`,
  )

  const db = createDb(pg.url, { log, max: 6 })
  defer(() => db.close())
  await migrate(db, log)
  spawnCairnProcess(defer, 'scheduler', { url: pg.url, cwd: dir, args: ['--lost-after', String(options.lostAfterMs / 1000)] })
  spawnWorkerProcess(defer, { url: pg.url, cwd: dir, args: ['--heartbeat', '0.5', '--grace', '5'] })
  await waitFor('the scheduler process to load the DAG', async () => (await db.query(`SELECT 1 FROM cairn.dag WHERE dag_id = 'chain' AND version_id IS NOT NULL`)).rows.length > 0, 30_000, 100)

  const triggered = await db.tx((q) => triggerRun(q, { now: () => new Date() }, { dagId: 'chain', params: {} }))
  assert.ok(triggered.ok)
  const runId = triggered.run.runId
  const waitForRunEnd = () =>
    waitFor(
      'the run to end',
      async () => {
        const { rows } = await db.query<{ state: string }>('SELECT state FROM cairn.run WHERE run_id = $1', [runId]).catch(() => ({ rows: [] as { state: string }[] }))
        const s = rows[0]?.state
        return s === 'success' || s === 'failed' || s === 'cancelled' ? s : undefined
      },
      60_000,
      50,
    )
  return { pg, db, ledger, runId, waitForRunEnd }
}

test('Postgres restarted mid-run: a scheduler process and a worker process reconnect by themselves and the run succeeds without duplicate attempts', async (t) => {
  const tasks = ['t1', 't2', 't3', 't4']
  const { pg, db, ledger, runId, waitForRunEnd } = await chainOnRestartablePostgres(t, { tasks, seconds: 1, retries: 1, lostAfterMs: 20_000 })
  await waitFor('t2 to start', () => readLedger(ledger).some((l) => l.event === 'start' && l.task === 't2'), 30_000)
  const stopping = Date.now()
  await pg.stop()
  const stoppedAt = Date.now()
  // t2 (1 s of work) finishes while the database is away: its worker must keep the result until it can record it.
  await sleep(3000)
  const starting = Date.now()
  await pg.start()
  const restartedAt = Date.now()

  const state = await waitForRunEnd()
  const rows = await attempts(db, runId)
  const lines = readLedger(ledger)
  const t2Recorded = rows.find((a) => a.task_id === 't2' && a.state === 'success')?.ended_at?.getTime()
  const t3Started = lines.find((l) => l.event === 'start' && l.task === 't3')?.at
  t.diagnostic(
    `Postgres stop took ${stoppedAt - stopping} ms, down ${restartedAt - stoppedAt} ms (incl. start); back -> t2 recorded ${t2Recorded === undefined ? '?' : t2Recorded - restartedAt} ms; back -> t3 started ${t3Started === undefined ? '?' : t3Started - restartedAt} ms`,
  )
  const gaps = tasks.slice(1).map((id, i) => {
    const end = lines.find((l) => l.event === 'end' && l.task === tasks[i])?.at
    const start = lines.find((l) => l.event === 'start' && l.task === id)?.at
    return `${tasks[i]}->${id} ${end === undefined || start === undefined ? '?' : start - end} ms`
  })
  t.diagnostic(`hand-over (end of a task -> start of the next): ${gaps.join(', ')}`)
  const t2End = lines.find((l) => l.event === 'end' && l.task === 't2')?.at ?? 0
  assert.ok(t2End > stoppedAt && t2End < starting, 't2 finished while Postgres was down')
  assert.equal(state, 'success', `attempts: ${JSON.stringify(rows.map((a) => [a.task_id, a.attempt, a.state]))}`)

  // Attempt rows are unique by their key; every task succeeded exactly once. A task attempted more than
  // once would need a `lost` row to explain it, and with an outage far shorter than lostAfterMs there is none.
  assert.equal(new Set(rows.map((a) => `${a.task_id}/${a.attempt}`)).size, rows.length)
  for (const id of tasks) {
    const mine = rows.filter((a) => a.task_id === id)
    assert.equal(mine.filter((a) => a.state === 'success').length, 1, `${id}: one success attempt`)
    for (const other of mine.filter((a) => a.state !== 'success')) assert.equal(other.state, 'lost', `${id} attempt ${other.attempt} is ${other.state}`)
  }
  assert.deepEqual(
    rows.map((a) => [a.task_id, a.attempt, a.state]),
    tasks.map((id) => [id, 1, 'success']),
    'no attempt was lost to a 3 s outage',
  )
  // Each task's program ran once, start to end, none overlapping the next.
  assert.deepEqual(
    lines.map((l) => `${l.event} ${l.task} ${l.attempt}`),
    tasks.flatMap((id) => [`start ${id} 1`, `end ${id} 1`]),
  )
  const history = await db.query<{ task_id: string; to_state: string }>('SELECT task_id, to_state FROM cairn.state_history WHERE run_id = $1 AND task_id IS NOT NULL ORDER BY id', [runId])
  for (const id of tasks) {
    assert.deepEqual(
      history.rows.filter((r) => r.task_id === id).map((r) => r.to_state),
      ['queued', 'running', 'success'],
      id,
    )
  }
})

test('Postgres down for longer than lostAfterMs: attempts whose workers kept running are not declared lost when it comes back', async (t) => {
  const lostAfterMs = 3000
  const { pg, db, ledger, runId, waitForRunEnd } = await chainOnRestartablePostgres(t, { tasks: ['long'], seconds: 9, retries: 0, lostAfterMs })
  await waitFor('the task to start', () => readLedger(ledger).some((l) => l.event === 'start'), 30_000)
  await sleep(500)
  await pg.stop()
  // Workers cannot heartbeat while the database is away; that silence is the scheduler's own outage, not theirs.
  await sleep(lostAfterMs + 2000)
  await pg.start()
  const restartedAt = Date.now()
  const state = await waitForRunEnd()
  const rows = await attempts(db, runId)
  assert.deepEqual(
    rows.map((a) => [a.task_id, a.attempt, a.state, a.failure_kind]),
    [['long', 1, 'success', null]],
  )
  assert.equal(state, 'success')
  const lines = readLedger(ledger)
  assert.deepEqual(
    lines.map((l) => `${l.event} ${l.attempt}`),
    ['start 1', 'end 1'],
  )
  assert.ok(lines[1]!.at > restartedAt, 'the task was still running when Postgres came back')
  t.diagnostic(`Postgres down ${lostAfterMs + 2000} ms with lostAfterMs ${lostAfterMs}; task recorded ${rows[0]!.ended_at!.getTime() - restartedAt} ms after Postgres was back`)
})

test('two schedulers on one database through 200 cron ticks create exactly one run per logical date, with no gaps', async (t) => {
  const defer = cleanupStack(t)
  const log = testLogger()
  const url = await createTestDatabase(t)
  const dir = mkdtempSync(join(tmpdir(), 'cairn-two-schedulers-'))
  defer(() => rmSync(dir, { recursive: true, force: true }))
  const dagsFolder = join(dir, 'dags')
  mkdirSync(dagsFolder)
  const t0 = Date.parse('2026-01-05T00:00:00Z')
  writeFileSync(
    join(dagsFolder, 'every_minute.yaml'),
    `dag: every_minute
schedule: "* * * * *"
start_date: "2026-01-05T00:00:00Z"
catchup: all
max_active_runs: 1000
tasks:
  nothing: { operator: noop }
`,
  )
  let clock = t0
  const now = () => new Date(clock)
  const setup = createDb(url, { log, max: 2 })
  defer(() => setup.close())
  await migrate(setup, log)
  const schedulers: Scheduler[] = []
  const dbs: Db[] = []
  await Promise.all(
    [0, 1].map(async () => {
      const db = createDb(url, { log, max: 4 })
      defer(() => db.close())
      const boss = await startBoss({ url, log, max: 2 })
      defer(() => boss.stop({ graceful: false, close: true }))
      // No background passes: the test drives both schedulers, tick by tick.
      const scheduler = await startScheduler({ db, boss, log, dagsFolder, cwd: dir, names: undefined, now, loopMs: 3_600_000, syncEveryMs: 3_600_000 })
      defer(() => scheduler.stop())
      schedulers.push(scheduler)
      dbs.push(db)
    }),
  )
  const db = dbs[0]!
  const count = async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM cairn.run WHERE dag_id = 'every_minute'`)).rows[0]!.n)
  assert.equal(await count(), 0, 'nothing is due at start_date')

  const steps = 200
  let late = 0
  const durations: number[] = []
  for (let step = 1; step <= steps; step++) {
    clock = t0 + step * 60_000
    const started = performance.now()
    await Promise.all(schedulers.map((s) => s.tick()))
    durations.push(performance.now() - started)
    // Both schedulers skip a DAG whose row the other holds (SKIP LOCKED); such a minute is made up later.
    if ((await count()) < step) late++
  }
  for (let i = 0; i < 5 && (await count()) < steps; i++) await Promise.all(schedulers.map((s) => s.tick()))

  const { rows } = await db.query<{ logical_date: Date; data_interval_end: Date; run_type: string }>(
    `SELECT logical_date, data_interval_end, run_type FROM cairn.run WHERE dag_id = 'every_minute' ORDER BY logical_date`,
  )
  assert.equal(rows.length, steps)
  assert.deepEqual(
    rows.map((r) => [r.logical_date.getTime() - t0, r.data_interval_end.getTime() - t0, r.run_type]),
    Array.from({ length: steps }, (_, i) => [i * 60_000, (i + 1) * 60_000, 'scheduled']),
  )
  const cursor = await db.query<{ schedule_cursor: Date }>(`SELECT schedule_cursor FROM cairn.dag WHERE dag_id = 'every_minute'`)
  assert.equal(cursor.rows[0]!.schedule_cursor.getTime(), t0 + (steps - 1) * 60_000)
  durations.sort((a, b) => a - b)
  t.diagnostic(
    `${steps} steps of two concurrent ticks: median ${durations[steps >> 1]!.toFixed(0)} ms, p95 ${durations[Math.floor(steps * 0.95)]!.toFixed(0)} ms, max ${durations[steps - 1]!.toFixed(0)} ms; minutes created a step late: ${late}`,
  )
})
