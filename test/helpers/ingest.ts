/**
 * The ingest operator run the way the worker runs it, without the queue: a real database with a
 * real running attempt (so publishing is fenced by a held claim), real data services, a fresh
 * workdir per call, and the task log collected in memory.
 */
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { dataSettings } from '../../engine/config/data-settings.ts'
import type { DataSettings } from '../../engine/config/data-settings.ts'
import type { CairnConfig } from '../../engine/config/load-config.ts'
import { createDataServices } from '../../engine/data/data-services.ts'
import { createDatasets } from '../../engine/data/datasets.ts'
import type { Datasets } from '../../engine/data/datasets.ts'
import { ingest } from '../../operators/ingest.ts'
import type { OperatorResult } from '../../operators/define.ts'
import { createTestDatabase, testLogger } from './postgres.ts'

export interface IngestHarness {
  db: Db
  /** The database's URL (DATABASE_URL for a CLI process on the same deployment). */
  url: string
  dir: string
  dagsFolder: string
  settings: DataSettings
  /** Reads datasets as the CLI would. */
  datasets: Datasets
  run(params: Record<string, unknown>, options?: RunOptions): Promise<{ result: OperatorResult; log: string[] }>
}

export interface RunOptions {
  interval?: { start: Date; end: Date }
  /** Same task instance as an earlier call (a retry): its run and task id. */
  taskInstance?: { runId: string; taskId: string }
  signal?: AbortSignal
}

let runs = 0

export async function ingestHarness(t: { after(fn: () => Promise<void>): void }, config: Pick<CairnConfig, 'data' | 'connections'> = {}, env: Record<string, string> = {}): Promise<IngestHarness> {
  const log = testLogger()
  const url = await createTestDatabase(t)
  const db = createDb(url, { log })
  t.after(() => db.close())
  await migrate(db, log)
  const dir = mkdtempSync(join(tmpdir(), 'cairn-ingest-'))
  t.after(async () => rmSync(dir, { recursive: true, force: true }))
  const dagsFolder = join(dir, 'dags')
  mkdirSync(dagsFolder)
  const settings = dataSettings(config, { cwd: dir, home: join(dir, 'home'), dagsFolder })
  await db.query(`INSERT INTO cairn.dag (dag_id, file) VALUES ('d', 'd.yaml')`)
  const { rows } = await db.query<{ version_id: string }>(`INSERT INTO cairn.dag_version (dag_id, hash, spec, source) VALUES ('d', 'h', '{}'::jsonb, '') RETURNING version_id`)
  const versionId = rows[0]!.version_id

  return {
    db,
    url,
    dir,
    dagsFolder,
    settings,
    datasets: createDatasets({ db, dir: settings.dir, producer: { kind: 'actor', actor: 'test' } }),
    async run(params, options = {}) {
      const n = ++runs
      const runId = options.taskInstance?.runId ?? `run-${n}`
      const taskId = options.taskInstance?.taskId ?? 'load'
      const interval = options.interval ?? { start: new Date('2026-01-01T00:00:00Z'), end: new Date('2026-01-01T00:00:00Z') }
      await db.query(
        `INSERT INTO cairn.run (run_id, dag_id, version_id, run_type, state, logical_date, data_interval_start, data_interval_end)
         VALUES ($1, 'd', $2, 'manual', 'running', $5, $3, $4) ON CONFLICT (run_id) DO NOTHING`,
        [runId, versionId, interval.start, interval.end, new Date(Date.UTC(2000, 0, 1) + n * 1000)],
      )
      const attempt = Number((await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM cairn.attempt WHERE run_id = $1 AND task_id = $2`, [runId, taskId])).rows[0]!.n) + 1
      await db.query(`INSERT INTO cairn.task_instance (run_id, task_id, state, attempt) VALUES ($1, $2, 'running', $3) ON CONFLICT (run_id, task_id) DO UPDATE SET attempt = $3`, [runId, taskId, attempt])
      const claim = await db.query<{ claim_id: string }>(
        `INSERT INTO cairn.attempt (run_id, task_id, attempt, state, claim_id) VALUES ($1, $2, $3, 'running', gen_random_uuid()) RETURNING claim_id`,
        [runId, taskId, attempt],
      )
      const workdir = join(dir, 'work', `${n}`)
      mkdirSync(workdir, { recursive: true })
      const lines: string[] = []
      const data = createDataServices(db, settings, { dagId: 'd', runId, taskId, attempt, claimId: claim.rows[0]!.claim_id }, env)
      const result = await ingest.run!(params, {
        dagId: 'd',
        runId,
        taskId,
        attempt,
        interval: { ...interval, logicalDate: interval.start },
        data,
        signal: options.signal ?? new AbortController().signal,
        env: {},
        workerEnv: {},
        workdir,
        log: {
          info: (m) => void lines.push(m),
          warn: (m) => void lines.push(`WARN ${m}`),
          error: (m) => void lines.push(`ERROR ${m}`),
        },
        output: () => undefined,
      })
      await db.query(`UPDATE cairn.attempt SET state = $3 WHERE run_id = $1 AND task_id = $2 AND state = 'running'`, [runId, taskId, result.ok ? 'success' : 'failed'])
      return { result, log: lines }
    },
  }
}
