/**
 * Bounds on what a request may carry: params nested deeper than allowed, numbers beyond the safe
 * integer range (or beyond Postgres' integer) in path params and query strings, and the same deep
 * params on the CLI. Each is a 400 (or exit 2) with a message that says which bound, never a 500 or
 * a stack overflow.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import type { FastifyInstance } from 'fastify'
import { startTestEngine } from '../helpers/engine.ts'
import type { TestEngine } from '../helpers/engine.ts'
import { waitFor } from '../helpers/engine-extra.ts'
import { testLogger } from '../helpers/postgres.ts'
import { rawRequest, startTestWeb } from '../helpers/web-client.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'

const DAGS = {
  'bounded.yaml': `dag: bounded
params:
  p: { type: object, default: {} }
  list: { type: array, default: [] }
tasks:
  a: { operator: noop }
`,
}

const MAIN = new URL('../../engine/cli/main.ts', import.meta.url).pathname

let engine: TestEngine
let app: FastifyInstance
let base: string
let operator: string
let viewer: string
let runId: string
const teardown: (() => Promise<void>)[] = []
after(async () => {
  for (const step of teardown.reverse()) await step()
})

before(async () => {
  engine = await startTestEngine({ after: (fn) => void teardown.push(fn) }, { dags: DAGS, scheduler: { loopMs: 200 } })
  ;({ app, base } = await startTestWeb({ db: engine.db, log: testLogger() }))
  teardown.push(() => app.close())
  operator = (await createToken(engine.db, { name: 'op', role: 'operator' }))!.token
  viewer = (await createToken(engine.db, { name: 'viewer', role: 'viewer' }))!.token
  await waitFor('the DAG to load', async () => {
    const r = await rawRequest(base, 'GET', '/api/v1/dags', { headers: { authorization: `Bearer ${viewer}` } })
    return r.status === 200 && r.json().dags.length === 1 ? true : undefined
  })
  runId = await engine.trigger('bounded')
})

const nested = (depth: number): unknown => {
  let value: unknown = 'leaf'
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { k: value } : [value]
  return value
}

test('params nested deeper than 32 levels are a 400 that names the bound; 32 levels are accepted', async () => {
  for (const depth of [33, 2_500, 20_000]) {
    const body = `{"params":{"p":${'{"k":'.repeat(depth)}1${'}'.repeat(depth)}}}`
    const r = await rawRequest(base, 'POST', '/api/v1/dags/bounded/runs', { headers: { authorization: `Bearer ${operator}` }, body })
    assert.equal(r.status, 400, `depth ${depth}: ${r.body.slice(0, 300)}`)
    assert.match(r.json().message, /deeper than 32 levels/, `depth ${depth}`)
  }
  const list = await rawRequest(base, 'POST', '/api/v1/dags/bounded/runs', { headers: { authorization: `Bearer ${operator}` }, body: { params: { list: nested(40) } } })
  assert.equal(list.status, 400, list.body)
  assert.match(list.json().message, /deeper than 32 levels/)
  // The value of `p` is itself level 1.
  const ok = await rawRequest(base, 'POST', '/api/v1/dags/bounded/runs', { headers: { authorization: `Bearer ${operator}` }, body: { params: { p: { k: nested(31) } } } })
  assert.equal(ok.status, 201, ok.body)
})

test('numbers in path params and query strings beyond their range are a 400, never a 500', async () => {
  const huge = '9'.repeat(30)
  const cases = [
    `/api/v1/dags/bounded/versions/${huge}`,
    `/api/v1/dags/bounded/versions/9007199254740993`,
    `/api/v1/dags/bounded/versions/1e300`,
    `/api/v1/dags/bounded/versions?limit=${huge}`,
    `/api/v1/dags/bounded/runs?limit=${huge}`,
    `/api/v1/dags/bounded/grid?limit=${huge}`,
    `/api/v1/runs/${runId}/tasks/a/logs?attempt=${huge}`,
    `/api/v1/runs/${runId}/tasks/a/logs?attempt=2147483648`,
    `/api/v1/runs/${runId}/tasks/a/logs?after=${huge}`,
    `/api/v1/runs/${runId}/tasks/a/logs?after=9223372036854775808`,
    `/api/v1/runs/${runId}/tasks/a/logs?after=-1`,
    `/api/v1/runs/${runId}/tasks/a/logs?attempt=0`,
  ]
  for (const path of cases) {
    const r = await rawRequest(base, 'GET', path, { headers: { authorization: `Bearer ${viewer}` } })
    assert.equal(r.status, 400, `${path}: ${r.status} ${r.body.slice(0, 300)}`)
    assert.ok(r.json().message.length > 0, path)
  }
  const biggest = await rawRequest(base, 'GET', `/api/v1/runs/${runId}/tasks/a/logs?attempt=2147483647&after=9007199254740991`, { headers: { authorization: `Bearer ${viewer}` } })
  // In range: the route runs and answers that there is no such attempt.
  assert.equal(biggest.status, 404, biggest.body)
  assert.match(biggest.json().message, /no attempt 2147483647/)
})

test('the CLI refuses params nested too deep with exit 2 and a message, not a stack overflow', () => {
  const deep = `${'{"k":'.repeat(20_000)}1${'}'.repeat(20_000)}`
  const result = spawnSync(process.execPath, [MAIN, 'trigger', 'bounded', '--param', `p=${deep}`], {
    env: { ...process.env, DATABASE_URL: engine.url, CAIRN_DAGS: engine.dagsFolder, CAIRN_HOME: `${engine.dir}/home` },
    encoding: 'utf8',
    timeout: 60_000,
  })
  assert.equal(result.status, 2, `stdout: ${result.stdout.slice(0, 500)}\nstderr: ${result.stderr.slice(0, 1000)}`)
  assert.match(result.stderr, /deeper than 32 levels/)
  assert.doesNotMatch(result.stderr, /Maximum call stack/)
})
