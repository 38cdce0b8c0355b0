/**
 * Two `cairn scheduler` processes and two `cairn worker` processes on one database, all real: many
 * runs of a fan-out DAG whose every task appends one line per execution to a ledger. Every task of
 * every run must run exactly once (one attempt, one ledger line, one queue job), whichever scheduler
 * started the run and whichever worker took the task.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { taskWritableDir } from '../helpers/engine.ts'
import { cleanupStack, spawnCairnProcess, spawnWorkerProcess, startRestartablePostgres, waitFor } from '../helpers/engine-extra.ts'
import { testLogger } from '../helpers/postgres.ts'
import { createDb } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { triggerRun } from '../../engine/store/control.ts'
import { BOSS_SCHEMA, TASK_QUEUE } from '../../engine/queue/task-queue.ts'

const RUNS = 12
const TASKS = 8

test('two scheduler processes and two worker processes: every task of every run runs exactly once', async (t) => {
  const defer = cleanupStack(t)
  const pg = await startRestartablePostgres(defer)
  const log = testLogger()
  const dir = join(pg.dir, 'engine')
  const dagsFolder = join(dir, 'dags')
  mkdirSync(dagsFolder, { recursive: true })
  // Tasks run as the unprivileged task user: the ledger's folder must be writable by it.
  const ledger = join(taskWritableDir(join(dir, 'shared')), 'ledger')
  const leaves = Array.from({ length: TASKS }, (_, i) => `  leaf${i}:
    operator: shell
    depends_on: root
    env: { LEDGER: "${ledger}" }
    params:
      script: printf '%s\\t%s\\t%s\\n' "$CAIRN_RUN_ID" "$CAIRN_TASK_ID" "$CAIRN_ATTEMPT" >> "$LEDGER"
`).join('')
  writeFileSync(join(dagsFolder, 'fan.yaml'), `dag: fan
max_active_runs: 4
defaults: { retries: 2, retry_delay: 1s }
tasks:
  root:
    operator: shell
    env: { LEDGER: "${ledger}" }
    params:
      script: printf '%s\\t%s\\t%s\\n' "$CAIRN_RUN_ID" "$CAIRN_TASK_ID" "$CAIRN_ATTEMPT" >> "$LEDGER"
${leaves}  join: { operator: noop, depends_on: [${Array.from({ length: TASKS }, (_, i) => `leaf${i}`).join(', ')}] }
`)
  const db = createDb(pg.url, { log, max: 4 })
  defer(() => db.close())
  await migrate(db, log)
  for (let i = 0; i < 2; i++) spawnCairnProcess(defer, 'scheduler', { url: pg.url, cwd: dir })
  for (let i = 0; i < 2; i++) spawnWorkerProcess(defer, { url: pg.url, cwd: dir, args: ['--slots', '4'] })
  await waitFor('the schedulers to load the DAG', async () => (await db.query(`SELECT 1 FROM cairn.dag WHERE dag_id = 'fan' AND version_id IS NOT NULL`)).rows.length > 0, 30_000, 100)

  const runIds: string[] = []
  for (let i = 0; i < RUNS; i++) {
    const r = await db.tx((q) => triggerRun(q, { now: () => new Date() }, { dagId: 'fan', params: {} }))
    assert.ok(r.ok)
    runIds.push(r.run.runId)
  }
  await waitFor(
    'every run to end',
    async () => {
      const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM cairn.run WHERE dag_id = 'fan' AND state IN ('success', 'failed', 'cancelled')`)
      return Number(rows[0]!.n) === RUNS || undefined
    },
    90_000,
    200,
  )
  const states = await db.query<{ state: string; n: string }>(`SELECT state, count(*) AS n FROM cairn.run WHERE dag_id = 'fan' GROUP BY state`)
  assert.deepEqual(states.rows.map((r) => [r.state, Number(r.n)]), [['success', RUNS]])

  // The ledger: one line per task execution.
  const lines = existsSync(ledger) ? readFileSync(ledger, 'utf8').trim().split('\n') : []
  const expected = runIds.flatMap((run) => ['root', ...Array.from({ length: TASKS }, (_, i) => `leaf${i}`)].map((task) => `${run}\t${task}\t1`))
  assert.deepEqual([...lines].sort(), [...expected].sort(), 'every shell task ran exactly once, as attempt 1')

  // The database agrees: one attempt per task instance, never two runs at once beyond max_active_runs.
  const attempts = await db.query<{ task_id: string; n: string }>(`SELECT task_id, count(*) AS n FROM cairn.attempt a JOIN cairn.run r USING (run_id) WHERE r.dag_id = 'fan' GROUP BY run_id, task_id HAVING count(*) <> 1`)
  assert.deepEqual(attempts.rows, [])
  const jobs = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${BOSS_SCHEMA}.job WHERE name = $1`, [TASK_QUEUE])
  assert.equal(Number(jobs.rows[0]!.n), RUNS * (TASKS + 2), 'one queue job per task instance')
  const overlap = await db.query<{ n: string }>(
    `SELECT max(n)::text AS n FROM (SELECT count(*) AS n FROM cairn.run a JOIN cairn.run b ON b.dag_id = a.dag_id
        AND b.started_at <= a.started_at AND (b.ended_at IS NULL OR b.ended_at > a.started_at)
      WHERE a.dag_id = 'fan' GROUP BY a.run_id) x`,
  )
  assert.ok(Number(overlap.rows[0]!.n) <= 4, `at most max_active_runs (4) runs at once, saw ${overlap.rows[0]!.n}`)
})
