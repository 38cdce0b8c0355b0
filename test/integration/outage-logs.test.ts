/**
 * A task that prints while the database is away (a `cairn worker` on DATABASE_URL, Postgres stopped
 * under it): its lines wait in the worker and are stored when the database is back, in order, once.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { cleanupStack, spawnCairnProcess, spawnWorkerProcess, startRestartablePostgres, waitFor } from '../helpers/engine-extra.ts'
import { testLogger } from '../helpers/postgres.ts'
import { taskWritableDir } from '../helpers/engine.ts'
import { createDb } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { triggerRun } from '../../engine/store/control.ts'

test('log lines printed while Postgres is down are stored when it is back', async (t) => {
  const defer = cleanupStack(t)
  const pg = await startRestartablePostgres(defer)
  const log = testLogger()
  const dir = join(pg.dir, 'engine')
  mkdirSync(join(dir, 'dags'), { recursive: true })
  // Tasks run as the unprivileged task user: the ledger's folder must be writable by it.
  const shared = taskWritableDir(join(dir, 'shared'))
  const ledger = join(shared, 'ledger')
  const go = join(shared, 'go')
  writeFileSync(
    join(dir, 'dags', 'talk.yaml'),
    `dag: talk
tasks:
  talk:
    operator: shell
    env: { LEDGER: "${ledger}", GO: "${go}" }
    params:
      script: |
        echo "line 1, database up"
        echo "start" >> "$LEDGER"
        while [ ! -f "$GO" ]; do sleep 0.05; done
        for i in 2 3 4 5; do echo "line $i, database down"; done
        echo "end" >> "$LEDGER"
`,
  )
  const db = createDb(pg.url, { log, max: 2 })
  defer(() => db.close())
  await migrate(db, log)
  spawnCairnProcess(defer, 'scheduler', { url: pg.url, cwd: dir, args: ['--lost-after', '30'] })
  spawnWorkerProcess(defer, { url: pg.url, cwd: dir, args: ['--heartbeat', '0.5'] })
  await waitFor('the scheduler to load the DAG', async () => (await db.query(`SELECT 1 FROM cairn.dag WHERE dag_id = 'talk' AND version_id IS NOT NULL`)).rows.length > 0, 30_000, 100)
  const triggered = await db.tx((q) => triggerRun(q, { now: () => new Date() }, { dagId: 'talk', params: {} }))
  assert.ok(triggered.ok)
  const runId = triggered.run.runId
  const lines = async () => (await db.query<{ line: string }>(`SELECT line FROM cairn.task_log WHERE run_id = $1 AND stream = 'stdout' ORDER BY id`, [runId])).rows.map((r) => r.line)
  await waitFor('line 1 to be stored', async () => (await lines()).length === 1, 30_000, 50)

  await pg.stop()
  writeFileSync(go, '')
  await waitFor('the task to end', () => existsSync(ledger) && readFileSync(ledger, 'utf8').includes('end'), 30_000, 50)
  // Several of the worker's 200 ms flushes fail meanwhile.
  await sleep(1500)
  await pg.start()

  await waitFor(
    'the run to succeed',
    async () => (await db.query<{ state: string }>('SELECT state FROM cairn.run WHERE run_id = $1', [runId]).catch(() => ({ rows: [] }))).rows[0]?.state === 'success',
    30_000,
    100,
  )
  assert.deepEqual(await lines(), ['line 1, database up', 'line 2, database down', 'line 3, database down', 'line 4, database down', 'line 5, database down'])
  const attempts = await db.query('SELECT attempt, state FROM cairn.attempt WHERE run_id = $1', [runId])
  assert.deepEqual(attempts.rows, [{ attempt: 1, state: 'success' }])
})
