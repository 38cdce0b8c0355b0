/**
 * Retention: `cairn db prune --older-than AGE` and cairn.yaml `retention` applied by the scheduler.
 * Finished runs older than the cut-off go with every row that hangs off them; queued, running and
 * recent runs stay whole.
 */
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import pg from 'pg'
import { startScheduler } from '../../engine/scheduler/scheduler.ts'
import { PRUNE_LOCK, pruneFinishedRuns, pruneFinishedRunsExclusively } from '../../engine/store/prune.ts'
import type { Db } from '../../engine/store/db.ts'
import { startTestEngine } from '../helpers/engine.ts'
import type { TestEngine } from '../helpers/engine.ts'
import { testLogger } from '../helpers/postgres.ts'
import { runCommand, waitFor } from '../helpers/engine-extra.ts'
import type { CommandResult } from '../helpers/engine-extra.ts'
import { waitForDags } from '../helpers/run-rows.ts'

const MAIN = new URL('../../engine/cli/main.ts', import.meta.url).pathname
const DAY = 86_400_000

const DAGS = {
  'quick.yaml': `dag: quick
tasks:
  first:
    operator: shell
    params: { command: [sh, -c, 'echo one; echo two; echo three >&2'] }
  second:
    operator: shell
    depends_on: first
    params: { command: [echo, done] }
`,
  'slow.yaml': `dag: slow
max_active_runs: 1
tasks:
  wait:
    operator: shell
    params: { command: [sleep, "600"] }
`,
}

interface Rows {
  runs: number
  taskInstances: number
  attempts: number
  logLines: number
  historyRows: number
}

async function rowsOf(db: Db, runIds: readonly string[]): Promise<Rows> {
  const n = async (table: string): Promise<number> => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM cairn.${table} WHERE run_id = ANY($1::text[])`, [runIds])).rows[0]!.n)
  return { runs: await n('run'), taskInstances: await n('task_instance'), attempts: await n('attempt'), logLines: await n('task_log'), historyRows: await n('state_history') }
}

/** Runs of every kind: finished long ago, finished recently, running and queued since long ago. */
async function fixture(t: TestContext): Promise<{ engine: TestEngine; old: string[]; recent: string; unfinished: string[] }> {
  const engine = await startTestEngine(t, { dags: DAGS, inProcessWorkers: 1 })
  await waitForDags(engine.db, ['quick', 'slow'])
  const finished: string[] = []
  for (let i = 0; i < 3; i++) {
    const runId = await engine.trigger('quick')
    assert.equal(await engine.waitForRun(runId), 'success')
    finished.push(runId)
  }
  const running = await engine.trigger('slow')
  await waitFor('the task to run', async () => (await engine.taskStates(running)).wait === 'running', 30_000, 50)
  const queued = await engine.trigger('slow')
  const [recent, ...old] = finished
  // Age them: two finished runs 100 days ago, the unfinished ones queued 200 days ago.
  await engine.db.query(`UPDATE cairn.run SET queued_at = queued_at - interval '100 days', started_at = started_at - interval '100 days', ended_at = ended_at - interval '100 days' WHERE run_id = ANY($1::text[])`, [old])
  await engine.db.query(`UPDATE cairn.run SET queued_at = queued_at - interval '200 days' WHERE run_id = ANY($1::text[])`, [[running, queued]])
  assert.equal((await engine.db.query<{ state: string }>('SELECT state FROM cairn.run WHERE run_id = $1', [queued])).rows[0]!.state, 'queued')
  return { engine, old, recent: recent!, unfinished: [running, queued] }
}

test('cairn db prune deletes old finished runs with their rows, in batches, and keeps recent and unfinished runs', async (t) => {
  const { engine, old, recent, unfinished } = await fixture(t)
  const doomed = await rowsOf(engine.db, old)
  assert.ok(doomed.taskInstances === 4 && doomed.attempts === 4 && doomed.logLines >= 8 && doomed.historyRows > 0, JSON.stringify(doomed))
  const kept = await rowsOf(engine.db, [recent])

  const env = { ...process.env, DATABASE_URL: engine.url, CAIRN_HOME: join(engine.dir, 'home'), CAIRN_LOG_LEVEL: 'warn' }
  const bad = await cairn(['db', 'prune', '--older-than', '90 days'], engine.dir, env)
  assert.equal(bad.code, 2, bad.stderr)
  assert.match(bad.stderr, /--older-than takes a duration such as 90d/)
  assert.equal((await cairn(['db', 'prune'], engine.dir, env)).code, 2)
  assert.equal((await cairn(['db', 'vacuum', '--older-than', '90d'], engine.dir, env)).code, 2)
  assert.equal((await rowsOf(engine.db, old)).runs, 2, 'a usage error deletes nothing')

  const pruned = await cairn(['db', 'prune', '--older-than', '90d', '--batch', '1', '--format', 'json'], engine.dir, env)
  assert.equal(pruned.code, 0, pruned.stderr)
  const report = JSON.parse(pruned.stdout)
  assert.deepEqual(
    { runs: report.runs, taskInstances: report.task_instances, attempts: report.attempts, logLines: report.log_lines, historyRows: report.history_rows, batches: report.batches },
    { ...doomed, batches: 2 },
  )
  assert.deepEqual(await rowsOf(engine.db, old), { runs: 0, taskInstances: 0, attempts: 0, logLines: 0, historyRows: 0 })
  assert.deepEqual(await rowsOf(engine.db, [recent]), kept)
  await assertUnfinishedKept(engine.db, unfinished)

  // Nothing left that old: a second prune removes nothing and says so.
  const again = await cairn(['db', 'prune', '--older-than', '90d'], engine.dir, env)
  assert.equal(again.code, 0, again.stderr)
  assert.match(again.stdout, /^removed 0 finished runs that ended before .* \(older than 90d\): 0 task instances, 0 attempts, 0 log lines, 0 history rows/)

  // An age of zero is every finished run up to now; unfinished runs still stay.
  const all = await cairn(['db', 'prune', '--older-than', '0s'], engine.dir, env)
  assert.equal(all.code, 0, all.stderr)
  assert.match(all.stdout, /^removed 1 finished run that ended before /)
  assert.equal((await rowsOf(engine.db, [recent])).runs, 0)
  await assertUnfinishedKept(engine.db, unfinished)
})

test('pruning goes batch by batch and skips a run that someone holds locked', async (t) => {
  const { engine, old } = await fixture(t)
  // Another transaction holds one of the old runs (a clear in progress): that run is left for next time.
  const holder = new pg.Client({ connectionString: engine.url })
  holder.on('error', () => {}) // the database is dropped at the end
  await holder.connect()
  t.after(() => holder.end())
  await holder.query('BEGIN')
  await holder.query('SELECT 1 FROM cairn.run WHERE run_id = $1 FOR UPDATE', [old[0]])
  const first = await pruneFinishedRuns(engine.db, { before: new Date(Date.now() - 90 * DAY), batchSize: 1 })
  assert.equal(first.runs, 1)
  assert.equal(first.batches, 1)
  assert.equal((await rowsOf(engine.db, [old[0]!])).runs, 1)
  await holder.end() // its transaction ends with it
  const second = await pruneFinishedRuns(engine.db, { before: new Date(Date.now() - 90 * DAY), batchSize: 1 })
  assert.equal(second.runs, 1)
  assert.equal((await rowsOf(engine.db, old)).runs, 0)
})

test('the scheduler applies cairn.yaml retention periodically, one scheduler at a time', async (t) => {
  const { engine, old, recent, unfinished } = await fixture(t)
  const kept = await rowsOf(engine.db, [recent])

  // While another process prunes (holds the lock), a scheduler skips its turn.
  const other = new pg.Client({ connectionString: engine.url })
  other.on('error', () => {})
  await other.connect()
  t.after(() => other.end())
  await other.query('SELECT pg_advisory_lock($1::bigint)', [PRUNE_LOCK.toString()])
  assert.equal(await pruneFinishedRunsExclusively(engine.db, { before: new Date() }), undefined)
  assert.equal((await rowsOf(engine.db, old)).runs, 2)
  await other.end()

  const scheduler = await startScheduler({
    db: engine.db,
    boss: engine.boss,
    log: testLogger(),
    dagsFolder: engine.dagsFolder,
    cwd: engine.dir,
    names: undefined,
    retention: { runsOlderThanMs: 30 * DAY, intervalMs: 200 },
  })
  t.after(() => scheduler.stop())
  await waitFor('the old run to be pruned', async () => (await rowsOf(engine.db, old)).runs === 0, 30_000, 50)
  assert.deepEqual(await rowsOf(engine.db, old), { runs: 0, taskInstances: 0, attempts: 0, logLines: 0, historyRows: 0 })
  assert.deepEqual(await rowsOf(engine.db, [recent]), kept)
  await assertUnfinishedKept(engine.db, unfinished)
})

/** The running and the queued run, queued 200 days ago, are still there with their task instances. */
async function assertUnfinishedKept(db: Db, unfinished: readonly string[]): Promise<void> {
  const { rows } = await db.query<{ state: string; tis: string }>(
    'SELECT r.state, (SELECT count(*) FROM cairn.task_instance ti WHERE ti.run_id = r.run_id)::text AS tis FROM cairn.run r WHERE run_id = ANY($1::text[]) ORDER BY state',
    [unfinished],
  )
  assert.deepEqual(rows.map((r) => [r.state, Number(r.tis)]), [['queued', 1], ['running', 1]])
}

function cairn(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<CommandResult> {
  return runCommand(process.execPath, [MAIN, ...args], { cwd, env })
}
