/**
 * The whole layout of docs/deploy.md on one machine, every part its own OS process: one Postgres, two
 * `cairn scheduler`, three `cairn worker`, one `cairn web` and two `cairn serve`, all on one
 * DATABASE_URL and one shared data folder (`data.dir` of cairn.yaml, as a shared filesystem would be),
 * each with a CAIRN_HOME of its own (as separate machines would have). They run the repository's
 * reference pipeline (a copy of dags/ made at test time) from its catch-up to the model being served;
 * one worker is killed (SIGKILL, no goodbye) while it trains. The scheduler's lost-worker rule moves
 * the training to another worker, and everything completes exactly once: the counts of runs, attempts,
 * queue jobs, model versions, rollouts and scored dataset versions are exact, both model servers answer
 * with the one version, the web process lists the runs, no rank of the killed worker is left running,
 * and every other process stops cleanly on SIGTERM.
 *
 * What the copy of dags/ rewrites, and why (nothing else changes):
 * - `start_date` / `end_date` of the catch-up DAG: a fixed window of CATCH_UP_DAYS daily intervals of the
 *   generated data instead of every day since 2026-09-01, so catch-up makes a few dozen runs, not a
 *   hundred, and their number and the trained model do not depend on the day the test runs;
 * - `retry_delay` (defaults and tasks) to 1s: the retry after the lost attempt need not wait 30 s;
 * - the rollout's `step_duration` to 2s: the canary steps need not take 20 s each.
 * The trainer's settings stay as shipped: more epochs would make training longer, but on this little
 * data they overfit and the gate (rightly) refuses the model. Instead the test freezes the rank
 * (SIGSTOP to its process group) as soon as it starts and lets it go on in short slices until its log
 * shows an epoch: the worker is killed with its rank stopped in the middle of training, on a fast
 * machine as on a slow one.
 * The schedulers run with `--lost-after 12` (default 30) and the workers with `--heartbeat 1`, for the
 * same reason as the retry delay: a lost worker is noticed within seconds.
 *
 * The DAG ids and task ids the test names are in PIPELINE below.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseDocument } from 'yaml'
import { cleanupStack, exited, groupAlive, startRestartablePostgres, waitFor } from '../helpers/engine-extra.ts'
import { stopChild, taskWritableDir } from '../helpers/engine.ts'
import { testLogger } from '../helpers/postgres.ts'
import { OipClient } from '../helpers/oip-client.ts'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'
import { BOSS_SCHEMA, TASK_QUEUE } from '../../engine/queue/task-queue.ts'

/**
 * The catch-up window: the daily intervals starting 2026-10-14 .. 2026-11-15 (Europe/Berlin days; no
 * interval starts after end_date), so the runs ingest the labels of 2026-10-15, 11-01 and 11-15 with
 * the feature history before them, and the last interval is the latest one whichever day the test
 * runs. (A shorter window, with two label days, trains a model the gate refuses: log_loss 0.66 > 0.65.)
 */
const START_DATE = '2026-10-14'
const END_DATE = '2026-11-16'
const CATCH_UP_DAYS = 33
const LOST_AFTER_S = 12

/** The few names of the reference pipeline the test depends on. */
const PIPELINE = {
  /** DAG files of dags/ that take part (the other examples are left out of the copy). */
  dagFiles: ['churn_data.yaml', 'churn_model.yaml'],
  /** The nightly DAG that catches up (ingest, features, training set); its start_date and end_date are rewritten. */
  catchUpDag: 'churn_data',
  /** The DAG that trains, gates, rolls out and scores (data-aware after catchUpDag, or the same DAG), and its tasks. */
  modelDag: 'churn_model',
  train: 'train',
  rollout: 'rollout',
  /** The registered model and the dataset the batch scoring writes. */
  model: 'churn',
  scores: 'churn_scores',
  /** The training set the catch-up DAG builds in its latest run only (and the model DAG waits for). */
  trainingSet: 'churn_training',
  /**
   * Attempts per task over all runs: each catch-up run runs its data tasks once (the training set's
   * `when` is decided by a worker, so its skips count too); the model DAG's one run runs each task
   * once, except the train task: the killed worker's attempt, then one more.
   */
  attempts: {
    churn_data: { ingest_events: CATCH_UP_DAYS, ingest_labels: CATCH_UP_DAYS, materialize_activity: CATCH_UP_DAYS, training_set: CATCH_UP_DAYS },
    churn_model: { drift: 1, train: 2, gate: 1, rollout: 1, score_users: 1 },
  } as Record<string, Record<string, number>>,
}

const REPO_DAGS = new URL('../../dags/', import.meta.url).pathname
/** The `cairn` bin, as users run it. */
const MAIN = new URL('../../bin/cairn.js', import.meta.url).pathname

interface Part {
  name: string
  child: ChildProcess
  stdout: string
  stderr: string
}

/** Copies dags/ (the listed DAG files, every feature view and the data) and rewrites what the header says. */
function copyPipeline(to: string): Map<string, Record<string, unknown>> {
  cpSync(REPO_DAGS, to, { recursive: true })
  const specs = new Map<string, Record<string, unknown>>()
  for (const name of readdirSync(to)) {
    if (!/\.ya?ml$/.test(name)) continue
    const file = join(to, name)
    if (!PIPELINE.dagFiles.includes(name)) {
      rmSync(file)
      continue
    }
    const doc = parseDocument(readFileSync(file, 'utf8'))
    const dagId = String(doc.get('dag'))
    if (dagId === PIPELINE.catchUpDag) {
      doc.set('start_date', START_DATE)
      doc.set('end_date', END_DATE)
    }
    if (doc.hasIn(['defaults', 'retry_delay'])) doc.setIn(['defaults', 'retry_delay'], '1s')
    const tasks = doc.toJS().tasks as Record<string, { operator: string; retry_delay?: string }>
    for (const [id, task] of Object.entries(tasks)) {
      if (task.retry_delay !== undefined) doc.setIn(['tasks', id, 'retry_delay'], '1s')
      if (task.operator === 'serve.rollout') doc.setIn(['tasks', id, 'params', 'step_duration'], '2s')
    }
    writeFileSync(file, doc.toString())
    specs.set(dagId, doc.toJS() as Record<string, unknown>)
  }
  for (const dag of [PIPELINE.catchUpDag, PIPELINE.modelDag]) assert.ok(specs.has(dag), `the copy of dags/ has DAG ${dag}`)
  return specs
}

/** The pids of the `cairn-train` processes a worker started (its children; each leads its own process group). */
function trainerChildren(workerPid: number): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const [, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number)
      if (ppid === workerPid && pgrp === Number(entry) && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('cairn-train')) found.push(Number(entry))
    } catch {
      // gone meanwhile
    }
  }
  return found
}

async function count(db: Db, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.query<{ n: string }>(sql, params)
  return Number(rows[0]!.n)
}

test('the whole layout as separate processes runs the reference pipeline exactly once through a worker killed mid-training', { timeout: 600_000 }, async (t) => {
  const defer = cleanupStack(t)
  const pg = await startRestartablePostgres(defer)
  const log = testLogger()
  const root = join(pg.dir, 'layout')
  const app = join(root, 'app')
  mkdirSync(app, { recursive: true })
  const specs = copyPipeline(join(app, 'dags'))
  // The shared filesystem: datasets, features and models of every process.
  const shared = taskWritableDir(join(root, 'shared', 'datasets'))
  writeFileSync(join(app, 'cairn.yaml'), `data: { dir: ${JSON.stringify(shared)} }\n`)

  const db = createDb(pg.url, { log, max: 4 })
  defer(() => db.close())
  await migrate(db, log)
  const token = (await createToken(db, { name: 'layout-test', role: 'viewer' }))!.token

  const parts: Part[] = []
  const start = (name: string, command: string, args: string[]): Part => {
    const home = join(root, 'homes', name)
    mkdirSync(home, { recursive: true })
    const child = spawn(process.execPath, [MAIN, command, ...args], {
      cwd: app,
      env: { ...process.env, DATABASE_URL: pg.url, CAIRN_HOME: home, CAIRN_CONFIG: join(app, 'cairn.yaml'), CAIRN_LOG_LEVEL: process.env.CAIRN_TEST_LOG || 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const part: Part = { name, child, stdout: '', stderr: '' }
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (part.stdout += d))
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      part.stderr += d
      if (process.env.CAIRN_TEST_LOG) process.stderr.write(`[${name}] ${d}`)
    })
    defer(() => stopChild(child))
    parts.push(part)
    return part
  }
  const announced = (part: Part, pattern: RegExp): Promise<string> =>
    waitFor(`${part.name} to start`, () => {
      if (part.child.exitCode !== null) throw new Error(`${part.name} exited with ${part.child.exitCode}: ${part.stderr}`)
      return pattern.exec(part.stdout)?.[1]
    }, 120_000, 50)

  const schedulers = [0, 1].map((i) => start(`scheduler${i}`, 'scheduler', ['--lost-after', String(LOST_AFTER_S)]))
  const workers = [0, 1, 2].map((i) => start(`worker${i}`, 'worker', ['--slots', '2', '--heartbeat', '1', '--grace', '10']))
  const web = start('web', 'web', ['--port', '0'])
  const servers = [0, 1].map((i) => start(`serve${i}`, 'serve', ['--port', '0']))
  const webUrl = await announced(web, /web on (http:\/\/\S+?)\/? /)
  const serveUrls = await Promise.all(servers.map((s) => announced(s, /model server on (http:\/\/\S+?)\/? /)))
  await Promise.all([...schedulers, ...workers].map((p) => announced(p, /(running) on/)))
  const started = Date.now()
  /** What the database and the processes say, for a failure's message. */
  const situation = async (): Promise<string> => {
    const runs = await db.query<{ dag_id: string; state: string; n: string }>(`SELECT dag_id, state, count(*) AS n FROM cairn.run GROUP BY 1, 2 ORDER BY 1, 2`)
    const failed = await db.query(`SELECT run_id, task_id, attempt, state, failure_kind, message FROM cairn.attempt WHERE state NOT IN ('success', 'skipped') ORDER BY queued_at DESC LIMIT 10`)
    const errors = await db.query(`SELECT file, diagnostics FROM cairn.import_error LIMIT 5`).catch(() => ({ rows: [] }))
    return JSON.stringify({ runs: runs.rows, failed: failed.rows, importErrors: errors.rows, stderr: Object.fromEntries(parts.map((p) => [p.name, p.stderr.slice(-2000)])) }, null, 1)
  }
  const until = async <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number, everyMs: number): Promise<T> => {
    try {
      return await waitFor(what, check, timeoutMs, everyMs)
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${await situation()}`)
    }
  }

  // The training run: as soon as the train attempt has started its rank, the rank's process group is
  // stopped (SIGSTOP) and let go on in short slices until its log shows it training (an epoch line,
  // and no model written yet): frozen mid-training whatever the machine's speed. Then the worker that
  // holds the attempt is killed.
  const trainRun = await until('the train task to start its rank', async () => {
    const { rows } = await db.query<{ run_id: string; worker_id: string; pid: number }>(
      `SELECT a.run_id, a.worker_id, w.pid FROM cairn.attempt a JOIN cairn.run r USING (run_id) JOIN cairn.worker w USING (worker_id)
       WHERE r.dag_id = $1 AND a.task_id = $2 AND a.attempt = 1 AND a.state = 'running'`,
      [PIPELINE.modelDag, PIPELINE.train],
    )
    const ranks = rows[0] ? trainerChildren(rows[0].pid) : []
    return ranks.length > 0 ? { ...rows[0]!, ranks } : undefined
  }, 240_000, 20)
  const rankPids = trainRun.ranks
  const signalRanks = (signal: NodeJS.Signals) => {
    for (const pid of rankPids) process.kill(-pid, signal)
  }
  signalRanks('SIGSTOP')
  defer(() => rankPids.forEach((pid) => groupAlive(pid) && process.kill(-pid, 'SIGKILL')))
  const trainLog = async () => {
    const { rows } = await db.query<{ line: string }>(`SELECT line FROM cairn.task_log_chunk c, unnest(c.lines) line WHERE c.run_id = $1 AND c.task_id = $2 AND c.attempt = 1`, [trainRun.run_id, PIPELINE.train])
    return rows.map((r) => r.line)
  }
  // Slices of 250 ms until the trainer has loaded (its "backend" line), of 100 ms after; each waits for
  // the worker to store the slice's lines (it flushes every 200 ms) before the next one.
  let sinceSlice = 0
  let lastLine = ''
  await until('the rank to log an epoch', async () => {
    const lines = await trainLog()
    lastLine = lines.at(-1) ?? ''
    assert.ok(!lines.some((l) => /trained \d+ rows|wrote .*model\.onnx/.test(l)), `the rank ended its training within one slice:\n${lines.join('\n')}`)
    if (lines.some((l) => /epoch \d+\//.test(l))) return true
    if (++sinceSlice >= 6) {
      sinceSlice = 0
      signalRanks('SIGCONT')
      await new Promise((r) => setTimeout(r, lines.some((l) => /backend /.test(l)) ? 100 : 250))
      signalRanks('SIGSTOP')
    }
    return false
  }, 120_000, 50)
  const victim = workers.find((w) => w.child.pid === trainRun.pid)
  assert.ok(victim, `the train attempt is held by one of the three workers (pid ${trainRun.pid})`)
  assert.ok(rankPids.every((pid) => groupAlive(pid)), `the ranks ${rankPids} run`)
  const killedAt = Date.now()
  victim.child.kill('SIGKILL')
  await exited(victim.child)
  // Its ranks die with it (each rank is the leader of its process group); a stopped process still gets SIGKILL.
  await waitFor(`the ranks ${rankPids} of the killed worker to end`, () => rankPids.every((pid) => !groupAlive(pid)), 15_000, 50)
  const ranksGoneMs = Date.now() - killedAt
  const attemptsAtKill = await count(db, `SELECT count(*) AS n FROM cairn.attempt WHERE run_id = $1 AND task_id = $2`, [trainRun.run_id, PIPELINE.train])
  assert.equal(attemptsAtKill, 1)

  // Everything completes.
  const expectedRuns = new Map<string, number>([[PIPELINE.catchUpDag, CATCH_UP_DAYS]])
  if (PIPELINE.modelDag !== PIPELINE.catchUpDag) expectedRuns.set(PIPELINE.modelDag, 1)
  const dagIds = [...specs.keys()]
  await until('every run of the pipeline to end', async () => {
    const { rows } = await db.query<{ dag_id: string; n: string }>(`SELECT dag_id, count(*) AS n FROM cairn.run WHERE dag_id = ANY($1) AND state IN ('success', 'failed', 'cancelled') GROUP BY dag_id`, [dagIds])
    const ended = new Map(rows.map((r) => [r.dag_id, Number(r.n)]))
    return [...expectedRuns].every(([dag, n]) => (ended.get(dag) ?? 0) >= n) || undefined
  }, 240_000, 200)
  const total = Date.now() - started
  t.diagnostic(`the worker was killed with its rank stopped after: ${lastLine}`)
  t.diagnostic(`pipeline ended ${(total / 1000).toFixed(1)} s after the processes started; the killed worker's ranks were gone ${ranksGoneMs} ms after the kill`)

  // Runs: exactly the catch-up intervals (and one run of the model DAG when it is a DAG of its own), all successful.
  const { rows: runStates } = await db.query<{ dag_id: string; state: string; n: string }>(`SELECT dag_id, state, count(*) AS n FROM cairn.run GROUP BY dag_id, state ORDER BY dag_id, state`)
  assert.deepEqual(
    runStates.map((r) => [r.dag_id, r.state, Number(r.n)]),
    [...expectedRuns].sort(([a], [b]) => a.localeCompare(b)).map(([dag, n]) => [dag, 'success', n]),
  )
  const { rows: catchUpRuns } = await db.query<{ data_interval_start: Date }>(`SELECT data_interval_start FROM cairn.run WHERE dag_id = $1 ORDER BY data_interval_start`, [PIPELINE.catchUpDag])
  assert.equal(catchUpRuns.length, new Set(catchUpRuns.map((r) => r.data_interval_start.getTime())).size, 'one run per interval')

  // Attempts: the train task of the training run exactly twice (the killed worker's, lost, then one on
  // another worker), every other task instance the workers ran exactly once.
  const { rows: attempts } = await db.query<{ run_id: string; dag_id: string; task_id: string; attempt: number; state: string; failure_kind: string | null; worker_id: string | null; ti_state: string }>(
    `SELECT a.run_id, r.dag_id, a.task_id, a.attempt, a.state, a.failure_kind, a.worker_id, ti.state AS ti_state
     FROM cairn.attempt a JOIN cairn.run r USING (run_id) JOIN cairn.task_instance ti USING (run_id, task_id) ORDER BY a.run_id, a.task_id, a.attempt`,
  )
  const trainAttempts = attempts.filter((a) => a.run_id === trainRun.run_id && a.task_id === PIPELINE.train)
  assert.deepEqual(trainAttempts.map((a) => [a.attempt, a.state, a.failure_kind]), [[1, 'lost', 'lost'], [2, 'success', null]], JSON.stringify(trainAttempts))
  assert.equal(trainAttempts[0]!.worker_id, trainRun.worker_id)
  assert.notEqual(trainAttempts[1]!.worker_id, trainRun.worker_id, 'the retry ran on another worker')
  const others = attempts.filter((a) => !(a.run_id === trainRun.run_id && a.task_id === PIPELINE.train))
  assert.deepEqual(others.filter((a) => a.attempt !== 1), [], 'no other task ran twice')
  assert.deepEqual(others.filter((a) => a.state !== a.ti_state || !['success', 'skipped'].includes(a.state)).map((a) => `${a.run_id} ${a.task_id} ${a.state}/${a.ti_state}`), [])
  // Which task instances ran at all: those that succeeded, and those a `when` skipped (the worker
  // decides a `when`, once every upstream succeeded); the ones skipped because an upstream was skipped
  // never reached a worker.
  const taskSpec = (dag: string, task: string) => (specs.get(dag)!.tasks as Record<string, { when?: unknown; depends_on?: string | string[]; trigger_rule?: string }>)[task]!
  const { rows: instances } = await db.query<{ run_id: string; dag_id: string; task_id: string; state: string }>(
    `SELECT ti.run_id, r.dag_id, ti.task_id, ti.state FROM cairn.task_instance ti JOIN cairn.run r USING (run_id) ORDER BY ti.run_id, ti.task_id`,
  )
  const stateOf = new Map(instances.map((ti) => [`${ti.run_id} ${ti.task_id}`, ti.state]))
  const attemptsOf = new Map<string, number>()
  for (const a of attempts) attemptsOf.set(`${a.run_id} ${a.task_id}`, (attemptsOf.get(`${a.run_id} ${a.task_id}`) ?? 0) + 1)
  const expectedAttempts = (ti: { run_id: string; dag_id: string; task_id: string; state: string }): number => {
    if (ti.run_id === trainRun.run_id && ti.task_id === PIPELINE.train) return 2
    if (ti.state === 'success') return 1
    const spec = taskSpec(ti.dag_id, ti.task_id)
    const upstream = spec.depends_on === undefined ? [] : ([] as string[]).concat(spec.depends_on)
    // all_success (the default) starts a task once every upstream succeeded, none_failed once none failed.
    const rule = spec.trigger_rule ?? (specs.get(ti.dag_id)!.defaults as { trigger_rule?: string } | undefined)?.trigger_rule
    const started = (state: string | undefined) => state === 'success' || (rule === 'none_failed' && state === 'skipped')
    return spec.when !== undefined && upstream.every((u) => started(stateOf.get(`${ti.run_id} ${u}`))) ? 1 : 0
  }
  const wrong = instances.filter((ti) => (attemptsOf.get(`${ti.run_id} ${ti.task_id}`) ?? 0) !== expectedAttempts(ti))
  assert.deepEqual(wrong, [], 'attempts per task instance')
  assert.ok(instances.every((ti) => ti.state === 'success' || ti.state === 'skipped'))
  // The training run did the whole lifecycle.
  const { rows: trainRunTasks } = await db.query<{ task_id: string; state: string }>(`SELECT task_id, state FROM cairn.task_instance WHERE run_id = $1`, [trainRun.run_id])
  assert.ok(trainRunTasks.every((r) => r.state === 'success'), JSON.stringify(trainRunTasks))
  const perTask: Record<string, Record<string, number>> = {}
  for (const a of attempts) (perTask[a.dag_id] ??= {})[a.task_id] = (perTask[a.dag_id]![a.task_id] ?? 0) + 1
  assert.deepEqual(perTask, PIPELINE.attempts, 'attempts per task')
  // The queue agrees: one job per attempt.
  assert.equal(await count(db, `SELECT count(*) AS n FROM ${BOSS_SCHEMA}.job WHERE name = $1`, [TASK_QUEUE]), attempts.length, 'one queue job per attempt')
  t.diagnostic(`${attempts.length} attempts in ${instances.length} task instances`)

  // Models: exactly one version, in production, rolled out once through every step.
  const { rows: versions } = await db.query<{ version: number; stage: string; traffic_share: number; lineage: { run?: string; attempt?: number } }>(`SELECT version, stage, traffic_share, lineage FROM cairn.model_version WHERE model = $1 ORDER BY version`, [PIPELINE.model])
  assert.deepEqual(versions.map((v) => [v.version, v.stage]), [[1, 'production']])
  assert.equal(versions[0]!.lineage.run, trainRun.run_id)
  assert.equal(versions[0]!.lineage.attempt, 2, 'registered by the second train attempt')
  assert.equal(await count(db, `SELECT count(*) AS n FROM cairn.model_version`), 1, 'no other model registered')
  const rolloutSpec = (specs.get(PIPELINE.modelDag)!.tasks as Record<string, { params: { steps: number[] } }>)[PIPELINE.rollout]!
  const { rows: rollouts } = await db.query<{ version: number; status: string; steps: { percent: number; passed: boolean }[]; run_id: string }>(`SELECT version, status, steps, run_id FROM cairn.model_rollout WHERE model = $1`, [PIPELINE.model])
  assert.deepEqual(rollouts.map((r) => [r.version, r.status, r.run_id, r.steps.map((s) => s.percent)]), [[1, 'promoted', trainRun.run_id, rolloutSpec.params.steps]])
  assert.ok(rollouts[0]!.steps.every((s) => s.passed), JSON.stringify(rollouts[0]!.steps))

  // The training set: one version (so one run of the data-aware model DAG), built by the latest catch-up run.
  assert.equal(await count(db, `SELECT count(*) AS n FROM cairn.dataset_version WHERE dataset = $1`, [PIPELINE.trainingSet]), 1)
  // The scores: one dataset version, written by the training run.
  const { rows: scoreVersions } = await db.query<{ version: number; run_id: string }>(`SELECT version, run_id FROM cairn.dataset_version WHERE dataset = $1`, [PIPELINE.scores])
  assert.deepEqual(scoreVersions.map((v) => [v.version, v.run_id]), [[1, trainRun.run_id]])

  // Both model servers serve that version; the web server shows the runs.
  for (const url of serveUrls) {
    const client = new OipClient(url, token)
    const meta = await client.get(`/v2/models/${PIPELINE.model}`)
    assert.equal(meta.status, 200, JSON.stringify(meta.body))
    const input = (meta.body.inputs as { name: string; shape: number[] }[])[0]!
    const width = input.shape[1]!
    const request = { inputs: [{ name: input.name, shape: [1, width], datatype: 'FP32', data: Array.from({ length: width }, (_, i) => i + 1) }] }
    await waitFor(`${url} to serve version 1`, async () => {
      const answer = await client.infer(PIPELINE.model, request)
      return answer.status === 200 && answer.body.model_version === '1'
    }, 10_000, 50)
  }
  for (const [dag, n] of expectedRuns) {
    const res = await fetch(`${webUrl.replace(/\/$/, '')}/api/v1/dags/${dag}/runs?limit=100`, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(res.status, 200)
    const body = (await res.json()) as { runs: { state: string }[] }
    assert.deepEqual(body.runs.map((r) => r.state), Array(n).fill('success'), `the web process lists ${n} runs of ${dag}`)
  }

  // Nothing left behind: no rank of the killed worker, and every process stops on SIGTERM by itself.
  assert.ok(rankPids.every((pid) => !groupAlive(pid)))
  const survivors = parts.filter((p) => p !== victim)
  for (const p of survivors) assert.equal(p.child.exitCode, null, `${p.name} still runs: ${p.stderr}`)
  for (const p of survivors) p.child.kill('SIGTERM')
  let timer: NodeJS.Timeout | undefined
  await Promise.race([Promise.all(survivors.map((p) => exited(p.child))), new Promise((r) => (timer = setTimeout(r, 60_000)))])
  clearTimeout(timer)
  assert.deepEqual(survivors.map((p) => [p.name, p.child.exitCode, p.child.signalCode]), survivors.map((p) => [p.name, 0, null]), 'every process stopped cleanly')
})
