/**
 * The datasets service on real Postgres and real Parquet files: versions numbered in commit order,
 * nothing visible before publish, a stale append refused, a retry of the same rows by the same task
 * instance reusing its version, and an attempt that lost its claim publishing nothing.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs'
import { join, relative } from 'node:path'
import { tmpdir } from 'node:os'
import { createDb } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { createDatasets, DatasetConflict, parseDatasetReference } from '../../engine/data/datasets.ts'
import type { StagedVersion } from '../../engine/data/datasets.ts'
import { openDuckDb, sqlString } from '../../engine/data/duckdb.ts'
import { sweepStagedFolders } from '../../engine/data/staged-sweep.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'

async function writeRows(staged: StagedVersion, sql: string): Promise<void> {
  const duck = await openDuckDb({ threads: 1 })
  try {
    await duck.run(`COPY (${sql}) TO ${sqlString(join(staged.dir, 'part-0.parquet'))} (FORMAT parquet)`)
  } finally {
    duck.close()
  }
}

/** A migrated database and an empty datasets directory, both gone after the test. */
async function setup(t: { after(fn: () => unknown): void }): Promise<{ db: ReturnType<typeof createDb>; dir: string }> {
  const log = testLogger()
  const db = createDb(await createTestDatabase(t), { log })
  t.after(() => db.close())
  await migrate(db, log)
  const dir = mkdtempSync(join(tmpdir(), 'cairn-datasets-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return { db, dir }
}

test('datasets: publish, read back, versions, reuse, stale base and fencing', async (t) => {
  const { db, dir } = await setup(t)
  const cli = createDatasets({ db, dir, producer: { kind: 'actor', actor: 'alice' } })

  const first = await cli.stage('events')
  await writeRows(first, `SELECT i::BIGINT AS id, 'u' || i AS user_id, TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL (i) HOUR AS ts FROM range(3) t(i)`)
  assert.equal(await cli.get('events'), undefined, 'a staged version is invisible')
  const [v1] = await cli.publish([{ staged: first, producedKind: 'import' }])
  assert.equal(v1!.version.version, 1)
  assert.equal(v1!.version.rows, 3)
  assert.deepEqual(v1!.version.columns, [{ name: 'id', type: 'integer' }, { name: 'user_id', type: 'string' }, { name: 'ts', type: 'timestamp' }])
  assert.equal(v1!.version.actor, 'alice')
  assert.equal(v1!.version.files.length, 1)

  const second = await cli.stage('events')
  await writeRows(second, `SELECT 9::BIGINT AS id, 'u9' AS user_id, TIMESTAMPTZ '2026-01-02 00:00:00+00' AS ts`)
  const [v2] = await cli.publish([{ staged: second, producedKind: 'import', base: 1 }])
  assert.equal(v2!.version.version, 2)
  assert.equal((await cli.resolve('events@1'))!.rows, 3)
  assert.equal((await cli.resolve('events'))!.version, 2)
  assert.deepEqual((await cli.versions('events')).map((v) => v.version), [2, 1])
  assert.deepEqual((await cli.list()).map((d) => [d.name, d.latestVersion, d.rows]), [['events', 2, 1]])

  // Computed from version 1, but version 2 is the latest now.
  const stale = await cli.stage('events')
  await writeRows(stale, `SELECT 1::BIGINT AS id, 'x' AS user_id, now() AS ts`)
  await assert.rejects(cli.publish([{ staged: stale, producedKind: 'ingest', base: 1 }]), DatasetConflict)
  assert.equal((await cli.get('events'))!.version, 2)
  await stale.discard()
  assert.equal(existsSync(stale.dir), false)

  // An attempt whose claim is not held (cancelled, lost) publishes nothing.
  const fenced = createDatasets({ db, dir, producer: { kind: 'attempt', runId: 'r1', taskId: 't1', attempt: 1, claimId: '00000000-0000-0000-0000-000000000000' } })
  const refused = await fenced.stage('events')
  await writeRows(refused, `SELECT 1::BIGINT AS id, 'x' AS user_id, now() AS ts`)
  await assert.rejects(fenced.publish([{ staged: refused, producedKind: 'ingest' }]), /no longer holds/)
  assert.equal((await cli.get('events'))!.version, 2)
})

test('datasets: a retried task instance that publishes the same rows gets its earlier version', async (t) => {
  const { db, dir } = await setup(t)
  // A real claim: a run, its task instance and a running attempt.
  const claims = await insertRunningAttempts(db, 2)
  const publishAs = async (claimId: string, attempt: number, sql: string) => {
    const datasets = createDatasets({ db, dir, producer: { kind: 'attempt', runId: claims.runId, taskId: 't', attempt, claimId } })
    const staged = await datasets.stage('scores')
    await writeRows(staged, sql)
    return (await datasets.publish([{ staged, producedKind: 'ingest' }]))[0]!
  }
  const a = await publishAs(claims.ids[0]!, 1, `SELECT i AS x FROM range(5) t(i)`)
  // Same rows in another order: the same content.
  const b = await publishAs(claims.ids[1]!, 2, `SELECT i AS x FROM range(5) t(i) ORDER BY i DESC`)
  assert.equal(a.version.version, 1)
  assert.equal(b.reused, true)
  assert.equal(b.version.version, 1)
  const c = await publishAs(claims.ids[1]!, 2, `SELECT i AS x FROM range(6) t(i)`)
  assert.equal(c.reused, false)
  assert.equal(c.version.version, 2)
  assert.deepEqual([parseDatasetReference('scores@2'), parseDatasetReference('scores'), parseDatasetReference('Scores'), parseDatasetReference('s@0')], [{ name: 'scores', version: 2 }, { name: 'scores' }, undefined, undefined])
})

/** A run of a one-task DAG with `n` attempts held (claimed and running), as a worker would hold them. */
async function insertRunningAttempts(db: ReturnType<typeof createDb>, n: number): Promise<{ runId: string; ids: string[] }> {
  const runId = 'run-datasets'
  await db.query(`INSERT INTO cairn.dag (dag_id, file) VALUES ('d', 'd.yaml')`)
  const { rows } = await db.query<{ version_id: string }>(`INSERT INTO cairn.dag_version (dag_id, hash, spec, source) VALUES ('d', 'h', '{}'::jsonb, '') RETURNING version_id`)
  await db.query(
    `INSERT INTO cairn.run (run_id, dag_id, version_id, run_type, state, logical_date, data_interval_start, data_interval_end)
     VALUES ($1, 'd', $2, 'manual', 'running', now(), now(), now())`,
    [runId, rows[0]!.version_id],
  )
  await db.query(`INSERT INTO cairn.task_instance (run_id, task_id, state, attempt) VALUES ($1, 't', 'running', $2)`, [runId, n])
  const ids: string[] = []
  for (let i = 1; i <= n; i++) {
    const { rows: r } = await db.query<{ claim_id: string }>(
      `INSERT INTO cairn.attempt (run_id, task_id, attempt, state, claim_id) VALUES ($1, 't', $2, 'running', gen_random_uuid()) RETURNING claim_id`,
      [runId, i],
    )
    ids.push(r[0]!.claim_id)
  }
  return { runId, ids }
}

test('the sweep removes staged folders no version will name: of attempts that ended, and old unclaimed ones; never a published or a running one', async (t) => {
  const { db, dir } = await setup(t)
  const { runId, ids: [claimA, claimB] } = await insertRunningAttempts(db, 2)
  const as = (claimId: string, attempt: number) => createDatasets({ db, dir, producer: { kind: 'attempt', runId, taskId: 't', attempt, claimId } })
  const rel = (staged: StagedVersion) => relative(dir, staged.dir)

  const published = await as(claimA!, 1).stage('events')
  assert.match(rel(published), new RegExp(`^events/${claimA}\\.[0-9a-f-]{36}$`), 'an attempt stages under its claim')
  await writeRows(published, `SELECT 1::BIGINT AS id`)
  await as(claimA!, 1).publish([{ staged: published, producedKind: 'ingest' }])
  const runningLeftover = await as(claimA!, 1).stage('events') // still being written: its attempt runs
  const endedLeftover = await as(claimB!, 2).stage('events') // its worker died before publishing
  await writeRows(endedLeftover, `SELECT 2::BIGINT AS id`)
  const cli = createDatasets({ db, dir, producer: { kind: 'actor', actor: 'alice' } })
  const imported = await cli.stage('labels')
  await writeRows(imported, `SELECT 3::BIGINT AS id`)
  await cli.publish([{ staged: imported, producedKind: 'import' }])
  const importLeftover = await cli.stage('labels')
  assert.match(rel(importLeftover), /^labels\/[0-9a-f-]{36}$/)
  // A materialization's folder of the ended attempt, a model's files and a folder that is not staged.
  const materialized = join(dir, '_features', 'activity', 'd1', '2026-01-02T000000.000Z', `${claimB}.${randomUUID()}`)
  mkdirSync(materialized, { recursive: true })
  mkdirSync(join(dir, '_models', 'churn', '1'), { recursive: true })
  mkdirSync(join(dir, 'events', 'notes'), { recursive: true })

  const sweep = (now = Date.now()) => sweepStagedFolders(db, dir, { now: () => now })
  assert.deepEqual(await sweep(), [], 'both attempts run: nothing goes')
  await db.query(`UPDATE cairn.attempt SET state = 'lost' WHERE claim_id = $1`, [claimB])
  assert.deepEqual((await sweep()).sort(), [relative(dir, materialized), rel(endedLeftover)].sort())
  assert.ok(!existsSync(endedLeftover.dir) && !existsSync(materialized))
  await db.query(`UPDATE cairn.attempt SET state = 'success' WHERE claim_id = $1`, [claimA])
  assert.deepEqual(await sweep(), [rel(runningLeftover)])
  assert.deepEqual(await sweep(Date.now() + 25 * 3_600_000), [rel(importLeftover)], 'an unclaimed folder goes after a day unchanged')
  // What versions name, the models and the folders that are not staged are all still there.
  assert.equal((await cli.resolve('events'))!.rows, 1)
  assert.equal((await cli.resolve('labels'))!.rows, 1)
  assert.ok(existsSync(published.dir) && existsSync(imported.dir))
  assert.ok(existsSync(join(dir, '_models', 'churn', '1')) && existsSync(join(dir, 'events', 'notes')))
  assert.deepEqual(await sweep(Date.now() + 25 * 3_600_000), [])
})
