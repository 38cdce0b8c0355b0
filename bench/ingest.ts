/**
 * Ingest throughput (issue 10, acceptance 4): a generated 1M-row x 10-column CSV loaded by the
 * ingest operator itself (declared types enforced, bad rows checked, expectations, Parquet written,
 * published to Postgres with its fingerprint) beside two raw baselines on the same file in the same
 * run: DuckDB's own read_csv -> Parquet COPY, and `psql \copy` into a Postgres table; beside the wall
 * times, the CPU time of the two in-process ones. Prints figures, never fails.
 * `npm run bench:ingest [-- ROWS [ROUNDS]]`.
 */
import { mkdtempSync, mkdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { silentLogger } from '../engine/log.ts'
import { startEmbeddedPostgres } from '../engine/store/embedded.ts'
import { createDb } from '../engine/store/db.ts'
import type { Db } from '../engine/store/db.ts'
import { migrate } from '../engine/store/migrate.ts'
import { dataSettings } from '../engine/config/data-settings.ts'
import { createDataServices } from '../engine/data/data-services.ts'
import { openDuckDb, sqlString } from '../engine/data/duckdb.ts'
import { ingest } from '../operators/ingest.ts'

const ROWS = Number(process.argv[2] ?? 1_000_000)
// Interleaved rounds; on a shared machine other load only ever adds time, so the best round is the figure compared.
const ROUNDS = Number(process.argv[3] ?? 5)
const log = silentLogger()
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const best = (xs: number[]): number => Math.min(...xs)

const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-ingest-'))
const dags = join(dir, 'dags')
mkdirSync(join(dags, 'data'), { recursive: true })
const csv = join(dags, 'data', 'events.csv')
const pg = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), log, ephemeral: true })
const db = createDb(pg.url, { log, max: 4 })
try {
  await migrate(db, log)
  await generate(csv, ROWS)
  const mb = statSync(csv).size / 1e6
  console.log(`ingest benchmark: ${ROWS} rows x 10 columns, ${mb.toFixed(1)} MB CSV, embedded PostgreSQL (port ${pg.port}), node ${process.version}, ${ROUNDS} interleaved rounds each`)

  const raw: number[] = []
  const ours: number[] = []
  const copy: number[] = []
  // CPU seconds of this process (DuckDB runs in it): other load on the machine stretches wall times, far less these.
  const rawCpu: number[] = []
  const oursCpu: number[] = []
  await prepareCopyTable(db)
  for (let round = 0; round < ROUNDS; round++) {
    raw.push(await cpuTimed(rawCpu, () => duckDbRaw(csv, join(dir, `raw-${round}.parquet`))))
    ours.push(await cpuTimed(oursCpu, () => ingestOnce(db, round)))
    copy.push(await psqlCopy(db, pg.url, csv))
  }
  const line = (name: string, seconds: number[]) => {
    const s = best(seconds)
    console.log(`${name.padEnd(48)} best ${s.toFixed(2)} s ${(ROWS / s / 1000).toFixed(0).padStart(5)}k rows/s, median ${median(seconds).toFixed(2)} s   (${seconds.map((x) => x.toFixed(2)).join(', ')} s)`)
  }
  line('DuckDB read_csv -> Parquet (raw baseline)', raw)
  line('cairn ingest (types, checks, Parquet, publish)', ours)
  line('psql \\copy into a Postgres table', copy)
  line('CPU time of the raw baseline', rawCpu)
  line('CPU time of cairn ingest', oursCpu)
  console.log(`ingest throughput = ${((best(raw) / best(ours)) * 100).toFixed(0)}% of DuckDB's raw read_csv -> Parquet, best rounds (goal >= 70%); ${((median(raw) / median(ours)) * 100).toFixed(0)}% by medians`)
  console.log(`ingest CPU time = ${((best(rawCpu) / best(oursCpu)) * 100).toFixed(0)}% of the raw baseline's, best rounds; ${((median(rawCpu) / median(oursCpu)) * 100).toFixed(0)}% by medians`)
  console.log(`ingest is ${(best(copy) / best(ours)).toFixed(2)}x the speed of psql \\copy, best rounds; ${(median(copy) / median(ours)).toFixed(2)}x by medians`)
} finally {
  await db.close()
  await pg.stop()
  rmSync(dir, { recursive: true, force: true })
}

async function generate(path: string, rows: number): Promise<void> {
  const duck = await openDuckDb({})
  try {
    await duck.run(`COPY (SELECT i AS id, 'user_' || (i % 100000) AS user_id, TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i) AS ts,
      (i % 1000) / 10.0 AS amount, i % 7 AS qty, ['DE', 'FR', 'IT'][i % 3 + 1] AS country, i % 2 = 0 AS flag,
      DATE '2026-01-01' + (i % 365)::INTEGER AS day, (i * 7919 % 10007) / 10007.0 AS score, 'c' || (i % 50) AS category
      FROM range(${rows}) t(i)) TO ${sqlString(path)} (HEADER)`)
  } finally {
    duck.close()
  }
}

async function cpuTimed(cpu: number[], work: () => Promise<number>): Promise<number> {
  const before = process.cpuUsage()
  const seconds = await work()
  const used = process.cpuUsage(before)
  cpu.push((used.user + used.system) / 1e6)
  return seconds
}

async function duckDbRaw(path: string, out: string): Promise<number> {
  const started = performance.now()
  const duck = await openDuckDb({})
  try {
    await duck.run(`COPY (SELECT * FROM read_csv($1)) TO ${sqlString(out)} (FORMAT parquet)`, [path])
  } finally {
    duck.close()
  }
  return (performance.now() - started) / 1000
}

/** The ingest operator's own run, with a real claim so that publishing is fenced as in a worker. */
async function ingestOnce(db: Db, round: number): Promise<number> {
  const runId = `bench-${round}`
  if (round === 0) {
    await db.query(`INSERT INTO cairn.dag (dag_id, file) VALUES ('bench', 'bench.yaml')`)
    await db.query(`INSERT INTO cairn.dag_version (dag_id, hash, spec, source) VALUES ('bench', 'h', '{}'::jsonb, '')`)
  }
  await db.query(
    `INSERT INTO cairn.run (run_id, dag_id, version_id, run_type, state, logical_date, data_interval_start, data_interval_end)
     VALUES ($1, 'bench', (SELECT max(version_id) FROM cairn.dag_version), 'manual', 'running', now() + ($2 || ' s')::interval, now(), now())`,
    [runId, round],
  )
  await db.query(`INSERT INTO cairn.task_instance (run_id, task_id, state, attempt) VALUES ($1, 'load', 'running', 1)`, [runId])
  const { rows } = await db.query<{ claim_id: string }>(`INSERT INTO cairn.attempt (run_id, task_id, attempt, state, claim_id) VALUES ($1, 'load', 1, 'running', gen_random_uuid()) RETURNING claim_id`, [runId])
  const settings = dataSettings({}, { cwd: dir, home: join(dir, 'home'), dagsFolder: dags })
  const workdir = join(dir, 'work', runId)
  mkdirSync(workdir, { recursive: true })
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined }
  const started = performance.now()
  const result = await ingest.run!({
    source: { kind: 'csv', path: 'data/events.csv' },
    dataset: 'events',
    mode: 'replace',
    columns: { id: { type: 'integer', nullable: false }, user_id: { type: 'string', nullable: false }, ts: { type: 'timestamp' }, amount: { type: 'number' } },
    expect: { min_rows: 1, not_null: ['ts'] },
  }, {
    dagId: 'bench', runId, taskId: 'load', attempt: 1,
    interval: { start: new Date(), end: new Date(), logicalDate: new Date() },
    data: createDataServices(db, settings, { dagId: 'bench', runId, taskId: 'load', attempt: 1, claimId: rows[0]!.claim_id }, {}),
    signal: new AbortController().signal, env: {}, workerEnv: {}, workdir, log: quiet, output: () => undefined,
  })
  const seconds = (performance.now() - started) / 1000
  if (!result.ok || result.outputs.rows !== ROWS) console.log(`ingest did not load every row: ${JSON.stringify(result)}`)
  return seconds
}

async function prepareCopyTable(db: Db): Promise<void> {
  await db.query(`CREATE TABLE bench_events (id bigint, user_id text, ts timestamptz, amount double precision, qty bigint, country text, flag boolean, day date, score double precision, category text)`)
}

async function psqlCopy(db: Db, url: string, path: string): Promise<number> {
  await db.query('TRUNCATE bench_events')
  const started = performance.now()
  const done = spawnSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-q', '-c', `\\copy bench_events FROM ${sqlString(path)} WITH (FORMAT csv, HEADER true)`], { encoding: 'utf8' })
  const seconds = (performance.now() - started) / 1000
  if (done.status !== 0) console.log(`psql \\copy failed: ${done.stderr}`)
  return seconds
}
