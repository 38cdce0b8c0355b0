/**
 * Data-aware scheduling (`schedule: { datasets: [...] }`): a DAG runs once every listed dataset has a new
 * version since its last dataset-triggered run. Versions published before the DAG listed a dataset do not
 * count; updates that arrive while a run waits are coalesced into one run; max_active_runs holds; the API
 * says which datasets the DAG is waiting for. A real scheduler and worker on a real Postgres.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { startTestEngine } from '../helpers/engine.ts'
import { createDatasets } from '../../engine/data/datasets.ts'
import { seedVersion } from '../helpers/datasets.ts'
import { rawRequest, startTestWeb } from '../helpers/web-client.ts'
import { testLogger } from '../helpers/postgres.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'
import { waitFor } from '../helpers/engine-extra.ts'

const CONSUMER = `
dag: consumer
schedule: { datasets: [events, labels] }
max_active_runs: 1
tasks:
  work: { operator: shell, params: { command: [sleep, "4"] } }
`

test('a dataset-scheduled DAG runs when every listed dataset has a new version, once per set of updates', { timeout: 180_000 }, async (t) => {
  const engine = await startTestEngine(t, {
    dags: { 'consumer.yaml': CONSUMER.replace(/work: .*/, 'work: { operator: noop }') },
    inProcessWorkers: 1,
    scheduler: { loopMs: 100, syncEveryMs: 60_000, lostAfterMs: 1e12 },
  })
  const datasets = createDatasets({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  const runs = async (): Promise<{ run_id: string; run_type: string; state: string }[]> =>
    (await engine.db.query<{ run_id: string; run_type: string; state: string }>(`SELECT run_id, run_type, state FROM cairn.run WHERE dag_id = 'consumer' ORDER BY queued_at`)).rows
  const settle = async (): Promise<void> => {
    // Several scheduler passes (loopMs 100), then every run finished.
    await new Promise((r) => setTimeout(r, 1_000))
    for (const run of await runs()) await engine.waitForRun(run.run_id, 60_000)
  }
  const waitingFor = async (): Promise<string[]> => {
    const { rows } = await engine.db.query<{ dataset: string }>(
      `SELECT c.dataset FROM cairn.dag_dataset_cursor c LEFT JOIN cairn.dataset d ON d.name = c.dataset WHERE c.dag_id = 'consumer' AND coalesce(d.latest_version, 0) <= c.version ORDER BY 1`,
    )
    return rows.map((r) => r.dataset)
  }

  // A version that existed before the DAG was first seen does not trigger it.
  await seedVersion(datasets, 'events', `SELECT 1 AS x`)
  await settle()
  assert.deepEqual(await runs(), [])

  // One of the two is not enough.
  await seedVersion(datasets, 'events', `SELECT 2 AS x`)
  await settle()
  assert.deepEqual(await runs(), [])
  assert.deepEqual(await waitingFor(), ['labels'])

  // Both: exactly one run, of type dataset.
  await seedVersion(datasets, 'labels', `SELECT 1 AS y`)
  await settle()
  const first = await runs()
  assert.equal(first.length, 1)
  assert.equal(first[0]!.run_type, 'dataset')
  assert.match(first[0]!.run_id, /^consumer__dataset__/)
  assert.equal(first[0]!.state, 'success')
  assert.deepEqual(await waitingFor(), ['events', 'labels'])

  // Two more versions of each while the DAG is paused: one run for all of them once it is unpaused.
  await engine.db.query(`UPDATE cairn.dag SET paused = true WHERE dag_id = 'consumer'`)
  await seedVersion(datasets, 'events', `SELECT 3 AS x`)
  await seedVersion(datasets, 'events', `SELECT 4 AS x`)
  await seedVersion(datasets, 'labels', `SELECT 2 AS y`)
  await seedVersion(datasets, 'labels', `SELECT 3 AS y`)
  await settle()
  assert.equal((await runs()).length, 1)
  await engine.db.query(`UPDATE cairn.dag SET paused = false WHERE dag_id = 'consumer'`)
  await settle()
  assert.equal((await runs()).length, 2)
  const { rows: cursor } = await engine.db.query<{ dataset: string; version: number }>(`SELECT dataset, version FROM cairn.dag_dataset_cursor WHERE dag_id = 'consumer' ORDER BY 1`)
  assert.deepEqual(cursor, [{ dataset: 'events', version: 4 }, { dataset: 'labels', version: 3 }])
  // Only labels again: nothing until events has a new version too.
  await seedVersion(datasets, 'labels', `SELECT 4 AS y`)
  await settle()
  assert.equal((await runs()).length, 2)
  assert.deepEqual(await waitingFor(), ['events'])
})

test('max_active_runs holds: updates during a run wait for it and are coalesced; the API shows what the DAG waits for', { timeout: 180_000 }, async (t) => {
  const engine = await startTestEngine(t, {
    dags: { 'consumer.yaml': CONSUMER },
    inProcessWorkers: 1,
    scheduler: { loopMs: 100, syncEveryMs: 60_000, lostAfterMs: 1e12 },
  })
  const datasets = createDatasets({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  const runs = async (): Promise<{ run_id: string; state: string }[]> =>
    (await engine.db.query<{ run_id: string; state: string }>(`SELECT run_id, state FROM cairn.run WHERE dag_id = 'consumer' ORDER BY queued_at`)).rows
  const until = (what: string, check: () => Promise<boolean>) => waitFor(what, check, 60_000, 100)
  // The scheduler has seen the DAG (its cursors exist) before anything is published.
  await until('the cursors', async () => (await engine.db.query(`SELECT 1 FROM cairn.dag_dataset_cursor WHERE dag_id = 'consumer'`)).rows.length === 2)
  const { app, base } = await startTestWeb({ db: engine.db, log: testLogger() })
  t.after(() => app.close())
  const headers = { authorization: `Bearer ${(await createToken(engine.db, { name: 'reader', role: 'viewer' }))!.token}` }
  const dags = await rawRequest(base, 'GET', '/api/v1/dags', { headers })
  assert.equal(dags.status, 200, dags.body)
  const consumer = (dags.json() as { dags: { dag_id: string; waiting_for: string[]; schedule_datasets: string[]; schedule_description: string }[] }).dags.find((d) => d.dag_id === 'consumer')!
  assert.deepEqual(consumer.waiting_for, ['events', 'labels'])
  assert.deepEqual(consumer.schedule_datasets, ['events', 'labels'])
  assert.equal(consumer.schedule_description, 'When datasets events and labels have new versions')

  await seedVersion(datasets, 'events', `SELECT 1 AS x`)
  const definition = await rawRequest(base, 'GET', '/api/v1/dags/consumer', { headers })
  assert.deepEqual(definition.json<{ waiting_for: string[] }>().waiting_for, ['labels'])
  await seedVersion(datasets, 'labels', `SELECT 1 AS y`)
  await until('the first run to start', async () => (await runs()).some((r) => r.state === 'running'))
  // While it runs (its task sleeps 4 s), new versions of both arrive, twice: no second run yet.
  for (const n of [2, 3]) {
    await seedVersion(datasets, 'events', `SELECT ${n} AS x`)
    await seedVersion(datasets, 'labels', `SELECT ${n} AS y`)
  }
  const during = await runs()
  if (during[0]!.state === 'running') assert.equal(during.length, 1, 'max_active_runs: 1')
  await until('exactly one more run', async () => (await runs()).length === 2)
  await until('both runs to finish', async () => (await runs()).every((r) => r.state === 'success'))
  await new Promise((r) => setTimeout(r, 1_000))
  assert.equal((await runs()).length, 2, 'the updates during the first run made one run, not two')
})
