/**
 * The reads behind the status page's views, against a real engine (in-process scheduler, a real
 * `cairn worker` process): the grid (runs by tasks in one request, paginated), the DAG list's recent
 * runs and schedule in words, the version history with each version's source, and the live-state
 * event stream that lets the page update without reloading.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { startTestEngine } from '../helpers/engine.ts'
import type { TestEngine } from '../helpers/engine.ts'
import { waitFor } from '../helpers/engine-extra.ts'
import { testLogger } from '../helpers/postgres.ts'
import { collectEvents, rawRequest, startTestWeb } from '../helpers/web-client.ts'
import type { Response, SseEvent } from '../helpers/web-client.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'

const CHAIN = `dag: view_chain
schedule: "0 9 * * 1-5"
start_date: 2026-01-01
paused: true
tasks:
  first: { operator: noop }
  second: { operator: shell, depends_on: first, params: { command: ["true"] } }
  third: { operator: noop, depends_on: second }
`
const FAILING = `dag: view_fail
tasks:
  boom: { operator: shell, params: { command: ["false"] } }
  after: { operator: noop, depends_on: boom }
`

let engine: TestEngine
let app: FastifyInstance
let base: string
let token: string
const teardown: (() => Promise<void>)[] = []
after(async () => {
  for (const step of teardown.reverse()) await step()
})

before(async () => {
  engine = await startTestEngine({ after: (fn) => void teardown.push(fn) }, { dags: { 'view_chain.yaml': CHAIN, 'view_fail.yaml': FAILING } })
  engine.spawnWorker()
  ;({ app, base } = await startTestWeb({ db: engine.db, log: testLogger(), statePollMs: 100 }))
  teardown.push(() => app.close())
  token = (await createToken(engine.db, { name: 'views', role: 'viewer' }))!.token
  await waitFor('the DAGs to load', async () => ((await get('/api/v1/dags')).json().dags.length === 2 ? true : undefined))
})

const auth = (): Record<string, string> => ({ authorization: `Bearer ${token}` })
const get = (path: string): Promise<Response> => rawRequest(base, 'GET', path, { headers: auth() })

async function finishedRun(dagId: string, expected: string): Promise<string> {
  const runId = await engine.trigger(dagId)
  assert.equal(await engine.waitForRun(runId), expected)
  return runId
}

describe('status page reads', () => {
  test('the grid gives every run of a page with each task state, rows in dependency order, and pages with the cursor', async () => {
    const runs: string[] = []
    for (let i = 0; i < 5; i++) runs.push(await finishedRun('view_chain', 'success'))
    const failed = await finishedRun('view_fail', 'failed')

    const first = await get('/api/v1/dags/view_chain/grid?limit=2')
    assert.equal(first.status, 200, first.body)
    const page = first.json()
    assert.deepEqual(page.tasks.map((t: { task_id: string }) => t.task_id), ['first', 'second', 'third'])
    assert.deepEqual(page.tasks[1].depends_on, ['first'])
    assert.deepEqual(page.runs.map((r: { run_id: string }) => r.run_id), [runs[4], runs[3]])
    for (const run of page.runs) {
      assert.equal(run.state, 'success')
      assert.deepEqual(run.tasks, { first: { state: 'success', attempts: 1 }, second: { state: 'success', attempts: 1 }, third: { state: 'success', attempts: 1 } })
    }
    const seen = page.runs.map((r: { run_id: string }) => r.run_id)
    let cursor: string | null = page.next_cursor
    while (cursor) {
      const next = (await get(`/api/v1/dags/view_chain/grid?limit=2&cursor=${encodeURIComponent(cursor)}`)).json()
      seen.push(...next.runs.map((r: { run_id: string }) => r.run_id))
      cursor = next.next_cursor
    }
    assert.deepEqual(seen, [...runs].reverse(), 'every run exactly once, newest first')

    const fail = (await get('/api/v1/dags/view_fail/grid')).json()
    assert.deepEqual(fail.runs[0].tasks, { boom: { state: 'failed', attempts: 1 }, after: { state: 'upstream_failed', attempts: 0 } })
    assert.equal(fail.runs[0].run_id, failed)

    assert.equal((await get('/api/v1/dags/nope/grid')).status, 404)
    assert.equal((await get('/api/v1/dags/view_chain/grid?cursor=garbage')).status, 400)
    assert.equal((await get('/api/v1/dags/view_chain/grid?limit=201')).status, 400)
    assert.equal((await rawRequest(base, 'GET', '/api/v1/dags/view_chain/grid')).status, 401)
  })

  test('the DAG list carries the newest runs of each DAG and the schedule in words', async () => {
    const before = (await get('/api/v1/dags/view_chain/runs?limit=10')).json().runs
    const dags = (await get('/api/v1/dags')).json().dags
    const chain = dags.find((d: { dag_id: string }) => d.dag_id === 'view_chain')
    assert.equal(chain.schedule_description, 'At 09:00, Monday through Friday')
    assert.deepEqual(chain.recent_runs.map((r: { run_id: string }) => r.run_id), before.map((r: { run_id: string }) => r.run_id))
    assert.ok(chain.recent_runs.length <= 10)
    const fail = dags.find((d: { dag_id: string }) => d.dag_id === 'view_fail')
    assert.equal(fail.schedule_description, 'Manual runs only')
    assert.equal(fail.recent_runs[0].state, 'failed')
  })

  test('each loaded version of a DAG is kept with its source; runs keep the version they started with', async () => {
    const v1 = (await get('/api/v1/dags/view_chain/versions')).json()
    assert.equal(v1.versions.length, 1)
    assert.equal(v1.versions[0].current, true)
    const oldRuns = v1.versions[0].runs
    assert.ok(oldRuns >= 5)
    const source1 = (await get(`/api/v1/dags/view_chain/versions/${v1.current_version}`)).json()
    assert.equal(source1.source, CHAIN)

    const changed = CHAIN.replace('  third: { operator: noop, depends_on: second }\n', '  third: { operator: noop, depends_on: second }\n  fourth: { operator: noop, depends_on: third }\n')
    engine.writeDag('view_chain.yaml', changed)
    const v2 = await waitFor('the new version', async () => {
      const body = (await get('/api/v1/dags/view_chain/versions')).json()
      return body.versions.length === 2 ? body : undefined
    })
    assert.deepEqual(v2.versions.map((v: { current: boolean }) => v.current), [true, false])
    assert.equal(v2.versions[1].runs, oldRuns)
    assert.equal((await get(`/api/v1/dags/view_chain/versions/${v2.current_version}`)).json().source, changed)
    assert.equal((await get(`/api/v1/dags/view_chain/versions/${v1.current_version}`)).json().source, CHAIN, 'old sources stay')
    assert.equal((await get('/api/v1/dags/view_chain')).json().version_id, v2.current_version)

    // The grid now has a fourth row; old runs have no cell for it.
    const grid = (await get('/api/v1/dags/view_chain/grid?limit=1')).json()
    assert.deepEqual(grid.tasks.map((t: { task_id: string }) => t.task_id), ['first', 'second', 'third', 'fourth'])
    assert.equal(grid.runs[0].tasks.fourth, undefined)

    assert.equal((await get('/api/v1/dags/view_chain/versions/999999')).status, 404)
    assert.equal((await get('/api/v1/dags/view_fail/versions/' + v1.current_version)).status, 404, "a version of another DAG is not this DAG's")
    assert.equal((await get('/api/v1/dags/view_chain/versions/abc')).status, 400)
  })

  test('the live-state stream announces each state change of the DAG it watches, and nothing of others', async () => {
    let triggered: string | undefined
    const other = { id: '' }
    const stream = await collectEvents(base, '/api/v1/events?dag=view_fail', auth(), {
      onEvent: (event: SseEvent) => {
        if (event.event !== 'ready' || triggered) return
        // Once the stream listens: a run of another DAG (must not show) and one of this DAG.
        triggered = 'pending'
        void engine.trigger('view_chain').then((id) => (other.id = id)).then(() => engine.trigger('view_fail')).then((id) => (triggered = id))
      },
      done: (events) => events.some((e) => e.event === 'states' && JSON.parse(e.data).changes.some((c: { task_id: string | null; state: string }) => c.task_id === null && c.state === 'failed')),
      timeoutMs: 30_000,
    })
    assert.equal(stream.status, 200)
    assert.equal(stream.events[0]!.event, 'ready')
    const changes = stream.events.filter((e) => e.event === 'states').flatMap((e) => JSON.parse(e.data).changes)
    assert.ok(changes.every((c: { dag_id: string }) => c.dag_id === 'view_fail'), JSON.stringify(changes))
    assert.ok(changes.every((c: { run_id: string }) => c.run_id === triggered), 'only the run triggered after the stream started')
    const boom = changes.filter((c: { task_id: string }) => c.task_id === 'boom').map((c: { state: string }) => c.state)
    assert.ok(boom.includes('failed'), JSON.stringify(changes))
    assert.ok(changes.some((c: { task_id: string; state: string }) => c.task_id === 'after' && c.state === 'upstream_failed'))
    assert.notEqual(other.id, '')
    await engine.waitForRun(other.id)
  })

  test('the stream also says when the DAG list changes (a pause), and needs credentials', async () => {
    const operator = (await createToken(engine.db, { name: 'views-op', role: 'operator' }))!.token
    let paused = false
    const stream = await collectEvents(base, '/api/v1/events', auth(), {
      onEvent: (event) => {
        if (event.event === 'ready' && !paused) {
          paused = true
          void rawRequest(base, 'POST', '/api/v1/dags/view_fail/pause', { headers: { authorization: `Bearer ${operator}` } })
        }
      },
      done: (events) => events.some((e) => e.event === 'dags'),
      timeoutMs: 15_000,
    })
    assert.ok(stream.events.some((e) => e.event === 'dags'))
    assert.equal((await rawRequest(base, 'GET', '/api/v1/events')).status, 401)
  })
})
