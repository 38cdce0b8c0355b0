/**
 * Runs through the web API under load and by hand: many concurrent manual triggers each get their
 * own run, and mark success / failed of a task instance (who did it is in the history).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestEngine } from '../helpers/engine.ts'
import { illegalHistory, waitForDags } from '../helpers/run-rows.ts'
import { testLogger } from '../helpers/postgres.ts'
import { rawRequest, startTestWeb } from '../helpers/web-client.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'
import { createUser } from '../../engine/web/auth/users.ts'
import { readHistory } from '../../engine/store/history.ts'

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

test('200 concurrent manual triggers without a logical date: 200 runs, no conflict; a taken logical date is still refused', async (t) => {
  // No scheduler: only the triggers write, so nothing else competes for the connections.
  const engine = await startTestEngine(t, { dags: { 'burst.yaml': 'dag: burst\ntasks:\n  a: { operator: noop }\n' }, scheduler: { loopMs: 60_000 } })
  await waitForDags(engine.db, ['burst'])
  await engine.scheduler!.stop()
  const { app, base } = await startTestWeb({ db: engine.db, log: testLogger() })
  t.after(() => app.close())
  const token = (await createToken(engine.db, { name: 'burst', role: 'operator' }))!.token

  const responses = await Promise.all(Array.from({ length: 200 }, () => rawRequest(base, 'POST', '/api/v1/dags/burst/runs', { headers: bearer(token), body: {} })))
  const statuses = new Map<number, number>()
  for (const r of responses) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
  assert.deepEqual([...statuses], [[201, 200]], responses.find((r) => r.status !== 201)?.body)
  const runIds = new Set(responses.map((r) => r.json().run_id as string))
  assert.equal(runIds.size, 200)
  const { rows } = await engine.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM cairn.run WHERE dag_id = 'burst'`)
  assert.equal(rows[0]!.n, 200)

  // An explicit logical date owns it: a second trigger for it is refused, whatever the first run's kind.
  const body = { logical_date: '2026-03-01T00:00:00Z' }
  assert.equal((await rawRequest(base, 'POST', '/api/v1/dags/burst/runs', { headers: bearer(token), body })).status, 201)
  const again = await rawRequest(base, 'POST', '/api/v1/dags/burst/runs', { headers: bearer(token), body })
  assert.equal(again.status, 409, again.body)
  assert.equal(again.json().error, 'exists')
  // So is a date that a trigger without one happened to get.
  const auto = (await engine.db.query<{ logical_date: Date }>(`SELECT logical_date FROM cairn.run WHERE run_id = $1`, [[...runIds][0]])).rows[0]!.logical_date
  const taken = await rawRequest(base, 'POST', '/api/v1/dags/burst/runs', { headers: bearer(token), body: { logical_date: auto.toISOString() } })
  assert.equal(taken.status, 409, taken.body)
})

test('mark success / failed through the API: operator only, finished tasks only, recorded with who did it', async (t) => {
  const engine = await startTestEngine(t, {
    dags: {
      'marked.yaml': `dag: marked
tasks:
  fails: { operator: shell, params: { command: ["false"] } }
  then: { operator: noop, depends_on: [fails] }
`,
    },
    inProcessWorkers: 1,
  })
  await waitForDags(engine.db, ['marked'])
  const { app, base } = await startTestWeb({ db: engine.db, log: testLogger() })
  t.after(() => app.close())
  const viewer = (await createToken(engine.db, { name: 'looker', role: 'viewer' }))!.token
  await createUser(engine.db, { username: 'carol', role: 'operator', password: 'correct horse battery' })
  const login = await rawRequest(base, 'POST', '/api/v1/login', { body: { username: 'carol', password: 'correct horse battery' } })
  assert.equal(login.status, 200, login.body)
  const cookie = [login.headers['set-cookie']].flat().find((c) => c?.startsWith('cairn_session='))!.split(';')[0]!
  const session = { cookie, 'x-csrf-token': login.json().csrf_token as string }

  const runId = await engine.trigger('marked')
  assert.equal(await engine.waitForRun(runId), 'failed')
  const path = `/api/v1/runs/${runId}/tasks/fails/mark`

  assert.equal((await rawRequest(base, 'POST', path, { headers: bearer(viewer), body: { state: 'success' } })).status, 403)
  assert.equal((await rawRequest(base, 'POST', path, { headers: { cookie }, body: { state: 'success' } })).status, 403, 'a session needs its CSRF token')
  assert.equal((await rawRequest(base, 'POST', path, { headers: session, body: { state: 'running' } })).status, 400)
  assert.equal((await rawRequest(base, 'POST', `/api/v1/runs/${runId}/tasks/nope/mark`, { headers: session, body: { state: 'success' } })).status, 404)
  const same = await rawRequest(base, 'POST', path, { headers: session, body: { state: 'failed' } })
  assert.equal(same.status, 409, same.body)

  const marked = await rawRequest(base, 'POST', path, { headers: session, body: { state: 'success' } })
  assert.equal(marked.status, 200, marked.body)
  assert.deepEqual(marked.json(), { run_id: runId, task_id: 'fails', state: 'success', previous_state: 'failed', run_state: 'queued', cleared: ['then'] })
  assert.equal(await engine.waitForRun(runId), 'success')
  assert.deepEqual(await engine.taskStates(runId), { fails: 'success', then: 'success' })
  const history = await readHistory(engine.db, runId)
  assert.deepEqual(history.filter((h) => h.taskId === 'fails' && h.actor !== null).map((h) => [h.actor, h.from, h.to, h.reason]), [['carol', 'failed', 'success', 'marked success']])
  assert.deepEqual(await illegalHistory(engine.db, runId), [])

  const doc = (await rawRequest(base, 'GET', '/api/v1/openapi.json', { headers: bearer(viewer) })).json()
  const operation = doc.paths['/api/v1/runs/{run}/tasks/{task}/mark']?.post
  assert.ok(operation, 'the mark route is in the OpenAPI document')
  assert.deepEqual(operation.requestBody.content['application/json'].schema.properties.state.enum, ['success', 'failed'])
})
