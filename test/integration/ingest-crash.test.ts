/**
 * Acceptance (issue 10, point 2): a worker SIGKILLed in the middle of an ingest publishes nothing,
 * and the retry on another worker publishes the version exactly once, through the real scheduler,
 * queue and `cairn worker` processes.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { startTestEngine } from '../helpers/engine.ts'
import { cleanupStack, exited, waitFor } from '../helpers/engine-extra.ts'
import { openDuckDb, sqlString } from '../../engine/data/duckdb.ts'

const ROWS = 2_000_000

test('a worker killed mid-ingest publishes nothing; the retry publishes exactly once', async (t) => {
  const defer = cleanupStack(t)
  const engine = await startTestEngine({ after: (fn) => defer(fn) }, {
    dags: {
      'load.yaml': `dag: load_big
tasks:
  load:
    operator: ingest
    retries: 2
    retry_delay: 500ms
    params:
      source: { kind: csv, path: data/big.csv }
      dataset: big
      columns: { ts: { type: timestamp }, id: { type: integer, nullable: false } }
      expect: { min_rows: ${ROWS}, unique: [id] }
`,
    },
    scheduler: { lostAfterMs: 3000, loopMs: 200 },
  })
  mkdirSync(join(engine.dagsFolder, 'data'))
  const duck = await openDuckDb({})
  await duck.run(`COPY (SELECT i AS id, 'user_' || (i % 1000) AS user_id, TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i) AS ts, i / 7.0 AS amount, md5(i::VARCHAR) AS h FROM range(${ROWS}) t(i)) TO ${sqlString(join(engine.dagsFolder, 'data', 'big.csv'))} (HEADER)`)
  duck.close()

  const versions = async () => (await engine.db.query<{ version: number; attempt: number; row_count: string }>(`SELECT version, attempt, row_count FROM cairn.dataset_version WHERE dataset = 'big' ORDER BY version`)).rows
  const workerA = engine.spawnWorker({ args: ['--heartbeat', '0.5'] })
  const runId = await engine.trigger('load_big')
  // The ingest has started once its scratch folder exists in the attempt's workdir.
  const workRoot = join(engine.dir, 'home', 'work')
  await waitFor('the ingest to start', () => existsSync(workRoot) && readdirSync(workRoot, { recursive: true }).some((p) => String(p).endsWith('/ingest')), 60_000)
  await new Promise((r) => setTimeout(r, 300))
  assert.deepEqual(await versions(), [], 'killed before publishing')
  workerA.kill('SIGKILL')
  await exited(workerA)
  assert.deepEqual(await versions(), [], 'the killed attempt published nothing')

  engine.spawnWorker({ args: ['--heartbeat', '0.5'] })
  assert.equal(await engine.waitForRun(runId, 120_000), 'success')
  const attempts = (await engine.db.query<{ attempt: number; state: string }>(`SELECT attempt, state FROM cairn.attempt WHERE run_id = $1 ORDER BY attempt`, [runId])).rows
  assert.deepEqual(attempts.map((a) => [a.attempt, a.state]), [[1, 'lost'], [2, 'success']])
  assert.deepEqual(await versions(), [{ version: 1, attempt: 2, row_count: String(ROWS) }])
  const outputs = (await engine.db.query<{ outputs: unknown }>(`SELECT outputs FROM cairn.task_instance WHERE run_id = $1`, [runId])).rows[0]!.outputs
  assert.deepEqual(outputs, { dataset: 'big', version: 1, rows: ROWS })
})
