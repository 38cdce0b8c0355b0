/**
 * Queues separate workers: a task runs only on a worker serving its `queue:` (workers.queues of the
 * worker's cairn.yaml, or --queue); on a queue no worker serves, it waits queued.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { startTestEngine } from '../helpers/engine.ts'
import type { TestEngine } from '../helpers/engine.ts'
import { BOSS_SCHEMA, enqueueJobs, queuedAttemptsWithoutJob } from '../../engine/queue/task-queue.ts'
import { waitFor } from '../helpers/engine-extra.ts'

const DAG = `dag: teams
tasks:
  shared: { operator: noop }
  after: { operator: noop, depends_on: shared }
  team_a_task: { operator: noop, queue: team_a }
  team_b_task: { operator: noop, queue: team_b }
`

const until = <T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>) => waitFor(what, probe, deadlineMs, 50)

async function workerIdOf(engine: TestEngine, child: ChildProcess): Promise<string> {
  return until(`worker ${child.pid} to register`, 60_000, async () => {
    const { rows } = await engine.db.query<{ worker_id: string }>('SELECT worker_id FROM cairn.worker WHERE pid = $1', [child.pid])
    return rows[0]?.worker_id
  })
}

test('each task runs only on a worker serving its queue; on a queue no worker serves it waits queued', async (t) => {
  const engine = await startTestEngine(t, { dags: { 'teams.yaml': DAG } })
  const defaultWorker = engine.spawnWorker()
  const runId = await engine.trigger('teams')

  // The default worker runs the default-queue tasks, `after` included (queued after the team tasks).
  await until('the default-queue tasks to succeed', 60_000, async () => {
    const states = await engine.taskStates(runId)
    return states.shared === 'success' && states.after === 'success' ? states : undefined
  })
  const states = await engine.taskStates(runId)
  assert.equal(states.team_a_task, 'queued')
  assert.equal(states.team_b_task, 'queued')
  const jobs = await engine.db.query<{ name: string; state: string; task: string }>(
    `SELECT name, state, data->>'taskId' AS task FROM ${BOSS_SCHEMA}.job WHERE data->>'runId' = $1 AND data->>'taskId' LIKE 'team%' ORDER BY task`,
    [runId],
  )
  assert.deepEqual(jobs.rows, [
    { name: 'cairn-tasks.team_a', state: 'created', task: 'team_a_task' },
    { name: 'cairn-tasks.team_b', state: 'created', task: 'team_b_task' },
  ])

  // The orphan sweep looks for each attempt's job on its own queue: both jobs are live.
  const farFuture = new Date(Date.now() + 3_600_000)
  assert.deepEqual(await engine.db.tx((q) => queuedAttemptsWithoutJob(q, farFuture)), [])
  // team_b's job is fetched by a worker that dies before claiming it: the sweep queues it again, on team_b.
  const [taken] = await engine.boss.fetch('cairn-tasks.team_b', { batchSize: 1 })
  assert.ok(taken)
  await engine.db.tx(async (q) => {
    const orphans = await queuedAttemptsWithoutJob(q, farFuture)
    assert.deepEqual(orphans, [{ runId, taskId: 'team_b_task', attempt: 1, priority: 0, queue: 'team_b' }])
    await enqueueJobs(engine.boss, q, orphans)
  })

  // A worker with --queue team_a, and one whose cairn.yaml lists team_b.
  const teamAWorker = engine.spawnWorker({ args: ['--queue', 'team_a'] })
  writeFileSync(join(engine.dir, 'team-b.yaml'), 'workers:\n  queues: [team_b]\n')
  const teamBWorker = engine.spawnWorker({ env: { CAIRN_CONFIG: 'team-b.yaml' } })
  assert.equal(await engine.waitForRun(runId, 60_000), 'success')

  const ids = { default: await workerIdOf(engine, defaultWorker), team_a: await workerIdOf(engine, teamAWorker), team_b: await workerIdOf(engine, teamBWorker) }
  const attempts = await engine.db.query<{ task_id: string; attempt: number; state: string; worker_id: string }>(
    'SELECT task_id, attempt, state, worker_id FROM cairn.attempt WHERE run_id = $1 ORDER BY task_id',
    [runId],
  )
  assert.deepEqual(attempts.rows, [
    { task_id: 'after', attempt: 1, state: 'success', worker_id: ids.default },
    { task_id: 'shared', attempt: 1, state: 'success', worker_id: ids.default },
    { task_id: 'team_a_task', attempt: 1, state: 'success', worker_id: ids.team_a },
    { task_id: 'team_b_task', attempt: 1, state: 'success', worker_id: ids.team_b },
  ])
  const instances = await engine.db.query<{ task_id: string; queue: string }>('SELECT task_id, queue FROM cairn.task_instance WHERE run_id = $1 ORDER BY task_id', [runId])
  assert.deepEqual(instances.rows.map((r) => `${r.task_id}:${r.queue}`), ['after:default', 'shared:default', 'team_a_task:team_a', 'team_b_task:team_b'])
})

test('a worker serving several queues takes from them in turn', async (t) => {
  const tasks = ['a1', 'a2', 'a3', 'a4'].map((id) => `  ${id}: { operator: noop, queue: qa }`).concat(['b1', 'b2', 'b3', 'b4'].map((id) => `  ${id}: { operator: noop, queue: qb }`))
  const engine = await startTestEngine(t, { dags: { 'fair.yaml': `dag: fair\ntasks:\n${tasks.join('\n')}\n` } })
  const runId = await engine.trigger('fair')
  await until('all eight attempts to be queued', 60_000, async () => {
    const { rows } = await engine.db.query<{ n: string }>(`SELECT count(*) AS n FROM cairn.attempt WHERE run_id = $1 AND state = 'queued'`, [runId])
    return Number(rows[0]!.n) === 8 ? true : undefined
  })
  // One slot: one job per fetch, so the order of starts is the order of fetches.
  engine.spawnWorker({ slots: 1, args: ['--queue', 'qa', '--queue', 'qb'] })
  assert.equal(await engine.waitForRun(runId, 60_000), 'success')
  const { rows } = await engine.db.query<{ queue: string }>(
    `SELECT ti.queue FROM cairn.attempt a JOIN cairn.task_instance ti USING (run_id, task_id) WHERE a.run_id = $1 ORDER BY a.started_at`,
    [runId],
  )
  assert.equal(rows.map((r) => (r.queue === 'qa' ? 'a' : 'b')).join(''), 'abababab')
})

test('an attempt handed back by a stopping worker goes back to its own queue', async (t) => {
  const engine = await startTestEngine(t, { dags: { 'slow.yaml': 'dag: slow\ntasks:\n  nap: { operator: shell, queue: team_a, params: { command: [sleep, "4"] } }\n' } })
  const first = engine.spawnWorker({ args: ['--queue', 'team_a', '--grace', '0.5'] })
  const runId = await engine.trigger('slow')
  await until('the task to run', 60_000, async () => ((await engine.taskStates(runId)).nap === 'running' ? true : undefined))
  first.kill('SIGTERM')
  await new Promise((resolve) => (first.exitCode !== null ? resolve(undefined) : first.once('exit', resolve)))
  assert.deepEqual(await engine.taskStates(runId), { nap: 'queued' })
  const waiting = await engine.db.query<{ name: string }>(`SELECT name FROM ${BOSS_SCHEMA}.job WHERE data->>'runId' = $1 AND state = 'created'`, [runId])
  assert.deepEqual(waiting.rows, [{ name: 'cairn-tasks.team_a' }])
  engine.spawnWorker({ args: ['--queue', 'team_a'] })
  assert.equal(await engine.waitForRun(runId, 60_000), 'success')
})

test('a --queue name outside the queue name rule is a usage error', async (t) => {
  const engine = await startTestEngine(t, { dags: {}, scheduler: false })
  const worker = engine.spawnWorker({ args: ['--queue', 'Team A'] })
  const code = await new Promise<number | null>((resolve) => (worker.exitCode !== null ? resolve(worker.exitCode) : worker.once('exit', (c) => resolve(c))))
  assert.equal(code, 2)
})
