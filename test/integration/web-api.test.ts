/**
 * The web API of SPEC section 6 against a real engine: an in-process server on a free port, a
 * scheduler and a real `cairn worker` process on a fresh database. Covers every /api/v1 route for every
 * kind of caller (401 / 403 / 2xx, CSRF for cookie sessions), spellings of paths that must not get
 * past auth, the login rate limit, triggering with params through to a finished run, following logs as
 * server-sent events, a secret that never shows in any response, /metrics and /healthz.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import type { FastifyInstance } from 'fastify'
import { startTestEngine } from '../helpers/engine.ts'
import type { TestEngine } from '../helpers/engine.ts'
import { cleanupStack, startRestartablePostgres, waitFor } from '../helpers/engine-extra.ts'
import { testLogger } from '../helpers/postgres.ts'
import { parsePrometheus, rawRequest, readEventStream, startTestWeb } from '../helpers/web-client.ts'
import type { RequestOptions, Response } from '../helpers/web-client.ts'
import { createDb } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import type { WebServerOptions } from '../../engine/web/server.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'
import { createUser } from '../../engine/web/auth/users.ts'
import { ROLES } from '../../engine/web/auth/roles.ts'
import type { Role } from '../../engine/web/auth/roles.ts'
import { createDatasets } from '../../engine/data/datasets.ts'
import { openDuckDb, sqlString } from '../../engine/data/duckdb.ts'
import { seedFeatureView } from '../helpers/feature-views.ts'
import { createModels } from '../../engine/models/registry.ts'

const CANARY = `canary-${randomBytes(12).toString('hex')}`
const PASSWORD = 'correct horse battery'
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

const DAGS = {
  'web_demo.yaml': `dag: web_demo
params:
  word: { type: string, default: hi }
  count: { type: integer, default: 1 }
tasks:
  hello:
    operator: shell
    env: { WORD: "{{ params.word }}", TOKEN: "{{ secrets.canary }}" }
    params:
      script: |
        echo "word=$WORD"
        echo "token=$TOKEN"
        printf '{"word": "%s", "token": "%s"}' "$WORD" "$TOKEN" > "$CAIRN_OUTPUTS"
  after: { operator: noop, depends_on: hello }
`,
  'web_slow.yaml': `dag: web_slow
tasks:
  tick:
    operator: shell
    params:
      script: |
        for i in 1 2 3 4 5; do echo "tick $i"; sleep 0.3; done
`,
  // One long run holds the only run slot, so runs triggered after it stay queued: cancel and clear have something to act on.
  'web_hold.yaml': `dag: web_hold
max_active_runs: 1
tasks:
  wait:
    operator: shell
    params: { command: [sleep, "600"] }
`,
  'web_sched.yaml': `dag: web_sched
schedule: "@daily"
start_date: 2026-01-01
tasks:
  noop: { operator: noop }
`,
  'web_many.yaml': `dag: web_many
tasks:
  count: { operator: shell, params: { script: "seq 1 1500" } }
`,
  'features/web_view.yaml': `feature_view: web_view
entity: user_id
source: web_events
timestamp: ts
features:
  n: { agg: count }
`,
  'web_broken.yaml': `dag: web_broken
tasks:
  a: { operator: shel }
`,
}

/** What the worker process and the web server logged, checked for the canary at the end. */
const processLogs: string[] = []
/** Every response body this file receives, checked for the canary at the end. */
const seenBodies: string[] = []

let engine: TestEngine
let app: FastifyInstance
let base: string
const tokens = {} as Record<Role, string>
const sessions = {} as Record<Role, { cookie: string; csrf: string }>
let blockerRun: string

async function call(method: string, path: string, options: RequestOptions = {}, at = base): Promise<Response> {
  const response = await rawRequest(at, method, path, options)
  seenBodies.push(response.body)
  return response
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

async function login(username: string, password: string, at = base): Promise<Response> {
  return call('POST', '/api/v1/login', { body: { username, password } }, at)
}

function sessionOf(response: Response): { cookie: string; csrf: string } {
  const setCookie = [response.headers['set-cookie']].flat().find((c) => c?.startsWith('cairn_session='))
  assert.ok(setCookie, `no session cookie in ${JSON.stringify(response.headers)}`)
  return { cookie: setCookie.split(';')[0]!, csrf: response.json().csrf_token }
}

async function startServer(options: Partial<WebServerOptions> = {}, db = engine.db): Promise<{ app: FastifyInstance; base: string }> {
  return startTestWeb({ db, log: testLogger(), followPollMs: 250, ...options })
}

async function waitForRunState(runId: string, states: string[], timeoutMs = 30_000): Promise<any> {
  return waitFor(
    `run ${runId} to reach ${states.join('/')}`,
    async () => {
      const r = await call('GET', `/api/v1/runs/${runId}`, { headers: bearer(tokens.viewer) })
      return r.status === 200 && states.includes(r.json().state) ? r.json() : undefined
    },
    timeoutMs,
    100,
  )
}

// Hooks registered inside before() would run when it ends; the file's teardown runs after every test.
const teardown: (() => Promise<void>)[] = []
after(async () => {
  for (const step of teardown.reverse()) await step()
})

before(async () => {
  engine = await startTestEngine({ after: (fn) => void teardown.push(fn) }, { dags: DAGS })
  // The worker and the web server log at debug level into buffers the canary test reads.
  const worker = engine.spawnWorker({ env: { CAIRN_SECRET_CANARY: CANARY, CAIRN_LOG_LEVEL: 'debug' } })
  worker.stdout?.on('data', (chunk: Buffer) => processLogs.push(chunk.toString('utf8')))
  worker.stderr?.on('data', (chunk: Buffer) => processLogs.push(chunk.toString('utf8')))
  const webLog = pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _encoding, done) => done(void processLogs.push(chunk.toString('utf8'))) }))
  ;({ app, base } = await startServer({ login: { perIp: 1000, perUser: 1000 }, log: webLog, data: { dir: engine.data.dir } }))
  await seedDataset('web_ds')
  writeFileSync(join(engine.dir, 'web_model.onnx'), 'onnx')
  await createModels({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } }).register({ name: 'web_model', file: join(engine.dir, 'web_model.onnx') })
  await seedFeatureView(engine.db, { name: 'web_fv', definitions: [{ definition: { entity: ['user_id'], source: 'web_ds', timestamp: 'ts', ttl_ms: null, online: true, features: [] }, source: 'feature_view: web_fv\n' }], intervals: [], online: 0 })
  teardown.push(() => app.close())
  for (const role of ROLES) {
    tokens[role] = (await createToken(engine.db, { name: `${role}-token`, role }))!.token
    await createUser(engine.db, { username: `${role}-user`, role, password: PASSWORD })
    const response = await login(`${role}-user`, PASSWORD)
    assert.equal(response.status, 200, response.body)
    sessions[role] = sessionOf(response)
  }
  await waitFor('the DAGs to load', async () => {
    const r = await call('GET', '/api/v1/dags', { headers: bearer(tokens.viewer) })
    return r.status === 200 && r.json().dags.length === 5 ? true : undefined
  })
  blockerRun = await engine.trigger('web_hold')
  await waitForRunState(blockerRun, ['running'])
})

/** Version 1 of a small dataset, published as a CLI import would. */
async function seedDataset(name: string): Promise<void> {
  const datasets = createDatasets({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  const staged = await datasets.stage(name)
  const duck = await openDuckDb({ threads: 1 })
  try {
    await duck.run(`COPY (SELECT i::BIGINT AS id, 'row ' || i AS label FROM range(3) t(i)) TO ${sqlString(`${staged.dir}/part-0.parquet`)} (FORMAT parquet)`)
  } finally {
    duck.close()
  }
  await datasets.publish([{ staged, producedKind: 'import' }])
}

/** A queued run of web_hold (it waits behind the blocker), for cancel and clear to act on. */
async function queuedRun(): Promise<string> {
  return engine.trigger('web_hold')
}

/** A cancelled run of web_hold: finished, so it can be cleared. */
async function cancelledRun(): Promise<string> {
  const runId = await queuedRun()
  const r = await call('POST', `/api/v1/runs/${runId}/cancel`, { headers: bearer(tokens.operator) })
  assert.equal(r.status, 200, r.body)
  return runId
}

interface RouteCase {
  name: string
  method: 'GET' | 'POST'
  role: Role
  /** Builds the path and body for one call (fresh runs for cancel and clear); expected success status. */
  make(): Promise<{ path: string; body?: unknown; ok: number }>
}

let counter = 0
const unique = (prefix: string): string => `${prefix}-${++counter}-${randomBytes(3).toString('hex')}`

const ROUTES: RouteCase[] = [
  { name: 'list DAGs', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/dags', ok: 200 }) },
  { name: 'list runs', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/dags/web_hold/runs?limit=2', ok: 200 }) },
  { name: 'trigger', method: 'POST', role: 'operator', make: async () => ({ path: '/api/v1/dags/web_hold/runs', body: { params: {} }, ok: 201 }) },
  { name: 'one run', method: 'GET', role: 'viewer', make: async () => ({ path: `/api/v1/runs/${blockerRun}`, ok: 200 }) },
  { name: 'task instances', method: 'GET', role: 'viewer', make: async () => ({ path: `/api/v1/runs/${blockerRun}/tasks`, ok: 200 }) },
  { name: 'logs', method: 'GET', role: 'viewer', make: async () => ({ path: `/api/v1/runs/${blockerRun}/tasks/wait/logs`, ok: 200 }) },
  { name: 'log download', method: 'GET', role: 'viewer', make: async () => ({ path: `/api/v1/runs/${blockerRun}/tasks/wait/logs/download`, ok: 200 }) },
  { name: 'cancel', method: 'POST', role: 'operator', make: async () => ({ path: `/api/v1/runs/${await queuedRun()}/cancel`, ok: 200 }) },
  { name: 'clear', method: 'POST', role: 'operator', make: async () => ({ path: `/api/v1/runs/${await cancelledRun()}/clear`, ok: 200 }) },
  { name: 'clear one task', method: 'POST', role: 'operator', make: async () => ({ path: `/api/v1/runs/${await cancelledRun()}/clear`, body: { task: 'wait' }, ok: 200 }) },
  { name: 'mark task', method: 'POST', role: 'operator', make: async () => ({ path: `/api/v1/runs/${await cancelledRun()}/tasks/wait/mark`, body: { state: 'success' }, ok: 200 }) },
  { name: 'pause', method: 'POST', role: 'operator', make: async () => ({ path: '/api/v1/dags/web_sched/pause', ok: 200 }) },
  { name: 'unpause', method: 'POST', role: 'operator', make: async () => ({ path: '/api/v1/dags/web_sched/unpause', ok: 200 }) },
  { name: 'list users', method: 'GET', role: 'admin', make: async () => ({ path: '/api/v1/users', ok: 200 }) },
  { name: 'create user', method: 'POST', role: 'admin', make: async () => ({ path: '/api/v1/users', body: { username: unique('u'), password: PASSWORD, role: 'viewer' }, ok: 201 }) },
  { name: 'create token', method: 'POST', role: 'admin', make: async () => ({ path: '/api/v1/tokens', body: { name: unique('t'), role: 'viewer' }, ok: 201 }) },
  { name: 'list tokens', method: 'GET', role: 'admin', make: async () => ({ path: '/api/v1/tokens', ok: 200 }) },
  { name: 'revoke token', method: 'POST', role: 'admin', make: async () => ({ path: `/api/v1/tokens/${(await createToken(engine.db, { name: unique('r'), role: 'viewer' }))!.row.name}/revoke`, ok: 204 }) },
  { name: 'disable user', method: 'POST', role: 'admin', make: async () => ({ path: `/api/v1/users/${(await createUser(engine.db, { username: unique('d'), role: 'viewer', password: PASSWORD }))!.username}/disable`, ok: 200 }) },
  { name: 'enable user', method: 'POST', role: 'admin', make: async () => ({ path: `/api/v1/users/${(await createUser(engine.db, { username: unique('e'), role: 'viewer', password: PASSWORD }))!.username}/enable`, ok: 200 }) },
  { name: 'session', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/session', ok: 200 }) },
  { name: 'OpenAPI document', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/openapi.json', ok: 200 }) },
  { name: 'DAG definition', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/dags/web_hold', ok: 200 }) },
  { name: 'grid', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/dags/web_hold/grid?limit=2', ok: 200 }) },
  { name: 'DAG versions', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/dags/web_hold/versions', ok: 200 }) },
  {
    name: 'DAG version source',
    method: 'GET',
    role: 'viewer',
    make: async () => ({ path: `/api/v1/dags/web_hold/versions/${(await engine.db.query<{ v: string }>(`SELECT version_id::text AS v FROM cairn.dag WHERE dag_id = 'web_hold'`)).rows[0]!.v}`, ok: 200 }),
  },
  { name: 'attempts', method: 'GET', role: 'viewer', make: async () => ({ path: `/api/v1/runs/${blockerRun}/attempts`, ok: 200 }) },
  { name: 'list datasets', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/datasets', ok: 200 }) },
  { name: 'dataset versions', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/datasets/web_ds/versions', ok: 200 }) },
  { name: 'dataset lineage', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/datasets/web_ds/versions/1/lineage', ok: 200 }) },
  { name: 'dataset rows', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/datasets/web_ds/versions/1/rows?limit=2', ok: 200 }) },
  { name: 'dataset bad rows', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/datasets/web_ds/versions/1/bad_rows', ok: 200 }) },
  { name: 'list feature views', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/feature_views', ok: 200 }) },
  { name: 'list models', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/models', ok: 200 }) },
  { name: 'one model', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/models/web_model', ok: 200 }) },
  { name: 'stage a model version', method: 'POST', role: 'operator', make: async () => ({ path: '/api/v1/models/web_model/versions/1/stage', body: { stage: 'candidate' }, ok: 200 }) },
  { name: 'feature view', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/feature_views/web_fv', ok: 200 }) },
  { name: 'online features', method: 'GET', role: 'viewer', make: async () => ({ path: '/api/v1/features/web_view/online?user_id=u1', ok: 200 }) },
  { name: 'online features (many)', method: 'POST', role: 'viewer', make: async () => ({ path: '/api/v1/features/web_view/online', body: { entities: [{ user_id: 'u1' }, { user_id: 2 }] }, ok: 200 }) },
]

const allows = (have: Role, need: Role): boolean => ROLES.indexOf(have) >= ROLES.indexOf(need)

describe('role x route matrix', () => {
  for (const route of ROUTES) {
    test(`${route.method} ${route.name}`, async () => {
      const anonymous = await route.make()
      const none = await call(route.method, anonymous.path, anonymous.body === undefined ? {} : { body: anonymous.body })
      assert.equal(none.status, 401, `no credentials: ${none.body}`)
      assert.match(String(none.headers['www-authenticate']), /^Bearer/)

      for (const role of ROLES) {
        for (const kind of ['token', 'session'] as const) {
          const { path, body, ok } = await route.make()
          const headers = kind === 'token' ? bearer(tokens[role]) : { cookie: sessions[role].cookie, ...(route.method === 'POST' ? { 'x-csrf-token': sessions[role].csrf } : {}) }
          const r = await call(route.method, path, { headers, ...(body === undefined ? {} : { body }) })
          const expected = allows(role, route.role) ? ok : 403
          assert.equal(r.status, expected, `${role} ${kind} ${route.method} ${path}: ${r.body}`)
          if (expected === 403) assert.equal(r.json().error, 'forbidden')
        }
      }
      // A browser session of a role that may do it still needs its CSRF token on every POST.
      if (route.method === 'POST') {
        const { path, body } = await route.make()
        const r = await call('POST', path, { headers: { cookie: sessions.admin.cookie }, ...(body === undefined ? {} : { body }) })
        assert.equal(r.status, 403, `POST ${path} without CSRF: ${r.body}`)
        assert.equal(r.json().error, 'csrf')
      }
    })
  }

  test('every /api/v1 route the server has needs credentials and documents its schemas and 401/403', async () => {
    const doc = (await call('GET', '/api/v1/openapi.json', { headers: bearer(tokens.viewer) })).json()
    const values: Record<string, string> = { dag: 'web_hold', run: blockerRun, task: 'wait', name: 'web_ds', version: '1', view: 'web_fv' }
    let checked = 0
    for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, operation] of Object.entries(operations)) {
        const key = `${method.toUpperCase()} ${path}`
        const statuses = Object.keys(operation.responses)
        assert.ok(statuses.some((s) => s.startsWith('2')), `${key} documents no success response`)
        if (method === 'post' && operation.requestBody) assert.ok(operation.requestBody.content['application/json'].schema, `${key} has no body schema`)
        if (!path.startsWith('/api/v1/') || path === '/api/v1/login') continue
        assert.ok(statuses.includes('401') && statuses.includes('403'), `${key} does not document 401 and 403`)
        assert.ok(operation.security, `${key} lists no security scheme`)
        const concrete = path.replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? 'x')
        const r = await call(method.toUpperCase(), concrete)
        assert.equal(r.status, 401, `${key} without credentials: ${r.body}`)
        checked++
      }
    }
    assert.ok(checked >= 15, `only ${checked} API routes documented`)
    for (const name of ['Run', 'TaskInstance', 'Error', 'LogLine', 'User', 'Token']) assert.ok(doc.components.schemas[name], `schema ${name} is not published`)
  })
})

test('models: the list and one model with its versions and audit', async () => {
  const list = (await call('GET', '/api/v1/models', { headers: bearer(tokens.viewer) })).json()
  assert.deepEqual(list.models.map((m: Record<string, unknown>) => [m.name, m.latest_version, m.production, m.canary]), [['web_model', 1, null, null]])
  // Each model's versions with stage and traffic share (SPEC section 7, HTTP additions).
  assert.deepEqual(list.models[0].versions.map((v: Record<string, unknown>) => [v.version, v.stage, v.traffic_share, typeof v.metrics, typeof v.lineage, typeof v.created_at]), [[1, 'candidate', 0, 'object', 'object', 'string']])
  const one = (await call('GET', '/api/v1/models/web_model', { headers: bearer(tokens.viewer) })).json()
  assert.deepEqual(one.versions.map((v: Record<string, unknown>) => [v.version, v.uri, v.stage, v.artifact]), [[1, 'models:/web_model/1', 'candidate', '_models/web_model/1/model.onnx']])
  assert.deepEqual(one.audit.map((a: Record<string, unknown>) => [a.version, a.from_stage, a.to_stage, a.actor]), [[1, null, 'candidate', { user: 'test' }]])
  assert.equal((await call('GET', '/api/v1/models/nope', { headers: bearer(tokens.viewer) })).status, 404)
  assert.equal((await call('GET', '/api/v1/models/No', { headers: bearer(tokens.viewer) })).status, 400)
})

describe('CSRF and credentials', () => {
  test('a cookie session must send its CSRF token on POST; a bearer token needs none', async () => {
    const { cookie, csrf } = sessions.operator
    const missing = await call('POST', '/api/v1/dags/web_sched/pause', { headers: { cookie } })
    assert.equal(missing.status, 403)
    assert.equal(missing.json().error, 'csrf')
    const wrong = await call('POST', '/api/v1/dags/web_sched/pause', { headers: { cookie, 'x-csrf-token': sessions.admin.csrf } })
    assert.equal(wrong.status, 403)
    assert.equal(wrong.json().error, 'csrf')
    const right = await call('POST', '/api/v1/dags/web_sched/pause', { headers: { cookie, 'x-csrf-token': csrf } })
    assert.equal(right.status, 200)
    const viaToken = await call('POST', '/api/v1/dags/web_sched/unpause', { headers: bearer(tokens.operator) })
    assert.equal(viaToken.status, 200)
    // Reads need no CSRF token.
    assert.equal((await call('GET', '/api/v1/dags', { headers: { cookie } })).status, 200)
  })

  test('a request that sends an Authorization header is judged by it alone, whatever session cookie it carries', async () => {
    const { cookie } = sessions.admin
    for (const authorization of ['Bearer not a token!', `Bearer ${'x'.repeat(43)}`, 'Basic YWRtaW46YWRtaW4=', 'Bearer']) {
      const r = await call('GET', '/api/v1/dags', { headers: { cookie, authorization } })
      assert.equal(r.status, 401, authorization)
    }
    assert.equal((await call('GET', '/api/v1/dags', { headers: { cookie, authorization: `Bearer ${tokens.viewer}` } })).status, 200)
    assert.equal((await call('GET', '/api/v1/users', { headers: { cookie, authorization: `Bearer ${tokens.viewer}` } })).status, 403, "the token's role, not the session's")
  })

  test('the session cookie is HttpOnly and SameSite=Strict, and the database keeps only hashes', async () => {
    const r = await login('viewer-user', PASSWORD)
    const setCookie = String(r.headers['set-cookie'])
    assert.match(setCookie, /HttpOnly/)
    assert.match(setCookie, /SameSite=Strict/)
    assert.match(setCookie, /Path=\//)
    assert.doesNotMatch(setCookie, /Secure/, 'plain http: no Secure flag')
    const sessionId = sessionOf(r).cookie.split('=')[1]!
    const stored = await engine.db.query(`SELECT encode(session_hash, 'hex') AS h FROM cairn.web_session UNION ALL SELECT encode(token_hash, 'hex') FROM cairn.api_token`)
    for (const secret of [sessionId, tokens.admin, tokens.viewer]) {
      assert.ok(!JSON.stringify(stored.rows).includes(secret), 'a secret is stored as it is')
    }
    const users = await engine.db.query<{ password_hash: string }>('SELECT password_hash FROM cairn.web_user')
    for (const row of users.rows) assert.match(row.password_hash, /^\$argon2id\$/)
  })

  test('a bearer header is judged alone: an invalid one is 401 even with a valid cookie, a viewer one is 403 even with an admin cookie', async () => {
    const withBadBearer = await call('GET', '/api/v1/dags', { headers: { cookie: sessions.admin.cookie, authorization: 'Bearer cairn_nope' } })
    assert.equal(withBadBearer.status, 401)
    const viewerBearer = await call('GET', '/api/v1/users', { headers: { cookie: sessions.admin.cookie, ...bearer(tokens.viewer) } })
    assert.equal(viewerBearer.status, 403)
    for (const authorization of ['Basic YWRtaW46eA==', `Token ${tokens.admin}`, 'Bearer', `Bearer ${tokens.admin}x`, `Bearer ${tokens.admin.slice(0, -1)}`]) {
      assert.equal((await call('GET', '/api/v1/dags', { headers: { authorization } })).status, 401, authorization)
    }
    assert.equal((await call('GET', '/api/v1/dags', { headers: { cookie: 'cairn_session=forged' } })).status, 401)
  })

  test('wrong passwords and unknown users get the same 401; logout ends the session', async () => {
    const wrong = await login('viewer-user', 'not the password')
    const unknown = await login('nobody-here', 'not the password')
    assert.equal(wrong.status, 401)
    assert.equal(unknown.status, 401)
    assert.deepEqual(wrong.json(), unknown.json())

    const session = sessionOf(await login('operator-user', PASSWORD))
    const noCsrf = await call('POST', '/api/v1/logout', { headers: { cookie: session.cookie } })
    assert.equal(noCsrf.status, 403, 'logout is a state change too')
    const out = await call('POST', '/api/v1/logout', { headers: { cookie: session.cookie, 'x-csrf-token': session.csrf } })
    assert.equal(out.status, 204)
    assert.match(String(out.headers['set-cookie']), /cairn_session=;/)
    assert.equal((await call('GET', '/api/v1/dags', { headers: { cookie: session.cookie } })).status, 401)
  })

  test('admins create users and tokens that work at once, with the role given', async () => {
    const name = unique('ops')
    const created = await call('POST', '/api/v1/users', { headers: bearer(tokens.admin), body: { username: name, password: PASSWORD, role: 'operator' } })
    assert.equal(created.status, 201)
    assert.equal(created.json().role, 'operator')
    assert.match(created.json().created_at, ISO_MS)
    assert.equal((await call('POST', '/api/v1/users', { headers: bearer(tokens.admin), body: { username: name, password: PASSWORD, role: 'viewer' } })).status, 409)
    assert.equal((await call('POST', '/api/v1/users', { headers: bearer(tokens.admin), body: { username: unique('x'), password: 'short', role: 'viewer' } })).status, 400)
    assert.equal((await call('POST', '/api/v1/users', { headers: bearer(tokens.admin), body: { username: '../evil', password: PASSWORD, role: 'viewer' } })).status, 400)
    assert.equal((await call('POST', '/api/v1/users', { headers: bearer(tokens.admin), body: { username: unique('x'), password: PASSWORD, role: 'root' } })).status, 400)
    const session = await login(name, PASSWORD)
    assert.equal(session.json().role, 'operator')

    const token = await call('POST', '/api/v1/tokens', { headers: bearer(tokens.admin), body: { name: unique('ci'), role: 'operator' } })
    assert.equal(token.status, 201)
    const secret = token.json().token as string
    const me = await call('GET', '/api/v1/session', { headers: bearer(secret) })
    assert.equal(me.json().role, 'operator')
    assert.equal(me.json().kind, 'token')
    assert.equal((await call('GET', '/api/v1/users', { headers: bearer(secret) })).status, 403)
    const listed = await call('GET', '/api/v1/users', { headers: bearer(tokens.admin) })
    assert.ok(listed.json().users.some((u: { username: string; role: string }) => u.username === name && u.role === 'operator'))
    assert.ok(!listed.body.includes('argon2'), 'password hashes never leave the database')
  })
})

describe('paths spelled differently never get past auth', () => {
  // Variants of admin-only and operator-only routes: case, slashes, encoded slashes and dots, matrix
  // parameters, dot segments, NUL and whitespace, encoded letters, fragments.
  const variants = (path: string): string[] => {
    const [, ...segments] = path.split('/')
    return [
      path,
      `${path}/`,
      `/${path}`,
      path.replace('/api/', '/api//'),
      path.toUpperCase(),
      path.replace('/api/', '/API/'),
      path.replace('/v1/', '/V1/'),
      `/${segments.join('%2f')}`,
      `/${segments.join('%2F')}`,
      path.replace('/api/', '/%61pi/'),
      `${path};x=1`,
      path.replace('/v1/', '/v1;x=1/'),
      `${path}%00`,
      `${path}%20`,
      `${path}/.`,
      `${path}/..`,
      path.replace('/api/v1/', '/api/v1/../v1/'),
      path.replace('/api/v1/', '/api/v1/./'),
      path.replace('/api/v1/', '/api/v1/dags/../'),
      path.replace('/api/v1/', '/api/v1/%2e%2e/v1/'),
      path.replace('/api/v1/', '/x/../api/v1/'),
      `${path}?x=1`,
      `${path}#frag`,
      `${path}\\`,
    ]
  }

  test('without credentials every spelling is 401', async () => {
    for (const target of ['/api/v1/users', '/api/v1/tokens', '/api/v1/dags', '/api/v1/dags/web_sched/pause', '/api/v1/openapi.json']) {
      for (const path of variants(target)) {
        for (const method of ['GET', 'POST', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']) {
          const r = await call(method, path, method === 'POST' ? { body: { name: unique('t'), role: 'admin' } } : {})
          assert.ok(r.status === 401 || r.status === 400, `${method} ${path} answered ${r.status} without credentials: ${r.body}`)
        }
      }
    }
    assert.equal(await engine.db.query(`SELECT count(*)::int AS n FROM cairn.api_token WHERE name LIKE 't-%' AND role = 'admin'`).then((r) => r.rows[0]!.n), 0)
  })

  test('a viewer never reaches an admin or operator route by any spelling', async () => {
    const before = await engine.db.query<{ n: number }>('SELECT count(*)::int AS n FROM cairn.api_token')
    const paused = await engine.db.query<{ paused: boolean }>(`SELECT paused FROM cairn.dag WHERE dag_id = 'web_sched'`)
    for (const [method, target, body] of [
      ['GET', '/api/v1/users', undefined],
      ['POST', '/api/v1/tokens', { name: 'sneaky', role: 'admin' }],
      ['POST', '/api/v1/users', { username: 'sneaky', password: PASSWORD, role: 'admin' }],
      ['POST', '/api/v1/dags/web_sched/pause', undefined],
    ] as const) {
      for (const path of variants(target)) {
        const r = await call(method, path, { headers: bearer(tokens.viewer), ...(body ? { body } : {}) })
        assert.ok(r.status === 403 || r.status === 404 || r.status === 400, `viewer ${method} ${path} answered ${r.status}: ${r.body}`)
      }
    }
    const afterCount = await engine.db.query<{ n: number }>('SELECT count(*)::int AS n FROM cairn.api_token')
    assert.equal(afterCount.rows[0]!.n, before.rows[0]!.n)
    assert.equal((await engine.db.query(`SELECT 1 FROM cairn.web_user WHERE username = 'sneaky'`)).rows.length, 0)
    assert.deepEqual((await engine.db.query<{ paused: boolean }>(`SELECT paused FROM cairn.dag WHERE dag_id = 'web_sched'`)).rows, paused.rows)
  })

  test('an unknown path needs a login before it is a 404; the page at / is never shown without a session', async () => {
    assert.equal((await call('GET', '/api/v2/anything')).status, 401)
    assert.equal((await call('GET', '/api/v2/anything', { headers: bearer(tokens.viewer) })).status, 404)
    const unknownPage = await call('GET', '/nothing-here', { headers: { accept: 'text/html' } })
    assert.equal(unknownPage.status, 401)
    assert.match(String(unknownPage.headers['content-type']), /text\/html/)
    assert.match(unknownPage.body, /log in/i)
    for (const path of ['/', '//', '/?x=1', '/;x=1', '/%2f', '/index.html']) {
      const anonymous = await call('GET', path, { headers: { accept: 'text/html' } })
      assert.ok(anonymous.status === 401 || anonymous.status === 404 || (anonymous.status >= 300 && anonymous.status < 400), `GET ${path} without a session answered ${anonymous.status}`)
      if (anonymous.status >= 300 && anonymous.status < 400) assert.match(String(anonymous.headers.location), /^\/login/)
    }
    const page = await call('GET', '/', { headers: { accept: 'text/html', cookie: sessions.viewer.cookie } })
    assert.equal(page.status, 200)
    assert.match(String(page.headers['content-type']), /text\/html/)
  })
})

describe('login rate limit', () => {
  test('per client address: the 11th attempt in a minute is refused with 429 and Retry-After', async (t) => {
    const server = await startServer()
    t.after(() => server.app.close())
    for (let i = 1; i <= 10; i++) {
      const r = await login(`someone-${i}`, 'wrong password', server.base)
      assert.equal(r.status, 401, `attempt ${i}: ${r.body}`)
    }
    const limited = await login('viewer-user', PASSWORD, server.base)
    assert.equal(limited.status, 429, limited.body)
    assert.ok(Number(limited.headers['retry-after']) > 0)
    assert.equal(limited.headers['set-cookie'], undefined)
  })

  test('per user name and address: after the failures allowed, even the right password waits', async (t) => {
    const server = await startServer({ login: { perIp: 100, perUser: 3 } })
    t.after(() => server.app.close())
    // The counters live in the database, shared by every server of this file: start from none.
    await engine.db.query('DELETE FROM cairn.login_throttle')
    for (let i = 1; i <= 3; i++) assert.equal((await login('viewer-user', 'wrong password', server.base)).status, 401)
    const limited = await login('VIEWER-user', PASSWORD, server.base)
    assert.equal(limited.status, 429, 'the right password does not help, whatever the case of the name')
    assert.equal((await login('operator-user', PASSWORD, server.base)).status, 200, 'other users still log in')
  })

  test('sessions expire', async (t) => {
    const server = await startServer({ sessionTtlMs: 1000 })
    t.after(() => server.app.close())
    const { cookie } = sessionOf(await login('viewer-user', PASSWORD, server.base))
    assert.equal((await call('GET', '/api/v1/dags', { headers: { cookie } }, server.base)).status, 200)
    await new Promise((r) => setTimeout(r, 1200))
    assert.equal((await call('GET', '/api/v1/dags', { headers: { cookie } }, server.base)).status, 401)
  })
})

describe('DAGs, runs and logs', () => {
  test('GET /dags shows schedule, paused flag, next run and import errors', async () => {
    await call('POST', '/api/v1/dags/web_sched/unpause', { headers: bearer(tokens.operator) })
    const r = await call('GET', '/api/v1/dags', { headers: bearer(tokens.viewer) })
    assert.equal(r.status, 200)
    const body = r.json()
    const sched = body.dags.find((d: { dag_id: string }) => d.dag_id === 'web_sched')
    assert.equal(sched.schedule, '@daily')
    assert.equal(sched.paused, false)
    assert.ok(sched.next_run, 'an active scheduled DAG has a next run')
    assert.match(sched.next_run.logical_date, ISO_MS)
    const start = Date.parse(sched.next_run.logical_date)
    assert.equal(Date.parse(sched.next_run.data_interval_end) - start, 24 * 3600_000)
    assert.equal(new Date(start).getUTCHours(), 0)
    // The next run is the interval that has not ended yet (today's), created when it ends.
    assert.ok(Date.parse(sched.next_run.run_after) > Date.now() - 60_000, JSON.stringify(sched))
    assert.ok(Date.parse(sched.next_run.run_after) <= Date.now() + 24 * 3600_000)
    const demo = body.dags.find((d: { dag_id: string }) => d.dag_id === 'web_demo')
    assert.equal(demo.schedule, null)
    assert.equal(demo.next_run, null)
    const broken = body.import_errors.find((e: { file: string }) => e.file.endsWith('web_broken.yaml'))
    assert.ok(broken, JSON.stringify(body.import_errors))
    assert.equal(broken.diagnostics[0].code, 'UNKNOWN_OPERATOR')

    await call('POST', '/api/v1/dags/web_sched/pause', { headers: bearer(tokens.operator) })
    const paused = (await call('GET', '/api/v1/dags', { headers: bearer(tokens.viewer) })).json().dags.find((d: { dag_id: string }) => d.dag_id === 'web_sched')
    assert.equal(paused.paused, true)
    assert.equal(paused.next_run, null)
    assert.equal((await call('POST', '/api/v1/dags/nope/pause', { headers: bearer(tokens.operator) })).status, 404)
  })

  test('trigger with params through the API, then the run finishes on a real worker', async () => {
    const r = await call('POST', '/api/v1/dags/web_demo/runs', { headers: bearer(tokens.operator), body: { params: { word: 'apiword', count: 3 } } })
    assert.equal(r.status, 201, r.body)
    const runId = r.json().run_id as string
    assert.equal(r.json().state, 'queued')
    const run = await waitForRunState(runId, ['success', 'failed', 'cancelled'])
    assert.equal(run.state, 'success', JSON.stringify(await engine.taskStates(runId)))
    assert.deepEqual(run.params, { word: 'apiword', count: 3 })
    for (const key of ['logical_date', 'queued_at', 'started_at', 'ended_at']) assert.match(run[key], ISO_MS, key)

    const tasks = (await call('GET', `/api/v1/runs/${runId}/tasks`, { headers: bearer(tokens.viewer) })).json()
    assert.deepEqual(tasks.tasks.map((t: { task_id: string; state: string }) => [t.task_id, t.state]), [['hello', 'success'], ['after', 'success']])
    const hello = tasks.tasks[0]
    assert.equal(hello.attempts, 1)
    assert.equal(hello.operator, 'shell')
    assert.equal(hello.outputs.word, 'apiword')
    assert.equal(hello.outputs.token, '***', 'the secret output is masked')

    const logs = (await call('GET', `/api/v1/runs/${runId}/tasks/hello/logs`, { headers: bearer(tokens.viewer) })).json()
    const lines = logs.lines.map((l: { line: string }) => l.line)
    assert.ok(lines.includes('word=apiword'), lines.join('\n'))
    assert.ok(lines.includes('token=***'), `the secret was used and masked: ${lines.join('\n')}`)
    assert.equal(logs.attempt, 1)
    assert.match(logs.lines[0].at, ISO_MS)
    const page = (await call('GET', `/api/v1/runs/${runId}/tasks/hello/logs?after=${logs.lines[0].id}`, { headers: bearer(tokens.viewer) })).json()
    assert.equal(page.lines.length, logs.lines.length - 1)
  })

  test('trigger refuses bad params with each problem, unknown DAGs, bad dates and unknown keys', async () => {
    const bad = await call('POST', '/api/v1/dags/web_demo/runs', { headers: bearer(tokens.operator), body: { params: { count: 'many', nope: 1 } } })
    assert.equal(bad.status, 400, bad.body)
    assert.equal(bad.json().error, 'invalid_params')
    assert.equal(bad.json().errors.length, 2, bad.body)
    assert.match(bad.body, /count/)
    assert.match(bad.body, /nope/)
    assert.equal((await call('POST', '/api/v1/dags/no_such_dag/runs', { headers: bearer(tokens.operator), body: { params: {} } })).status, 404)
    const date = await call('POST', '/api/v1/dags/web_demo/runs', { headers: bearer(tokens.operator), body: { logical_date: '2026-02-30' } })
    assert.equal(date.status, 400)
    assert.equal(date.json().error, 'invalid_logical_date')
    assert.equal((await call('POST', '/api/v1/dags/web_demo/runs', { headers: bearer(tokens.operator), body: { param: { word: 'x' } } })).status, 400)
    assert.equal((await call('POST', '/api/v1/dags/web_demo/runs', { headers: bearer(tokens.operator), body: '{not json' })).status, 400)
    const dated = await call('POST', '/api/v1/dags/web_hold/runs', { headers: bearer(tokens.operator), body: { logical_date: '2020-01-01' } })
    assert.equal(dated.status, 201)
    const again = await call('POST', '/api/v1/dags/web_hold/runs', { headers: bearer(tokens.operator), body: { logical_date: '2020-01-01' } })
    assert.equal(again.status, 409)
  })

  test('runs are listed newest first; the cursor pages through all of them exactly once', async () => {
    for (let i = 0; i < 5; i++) await queuedRun()
    const { rows } = await engine.db.query<{ run_id: string }>(`SELECT run_id FROM cairn.run WHERE dag_id = 'web_hold' ORDER BY queued_at DESC, run_id DESC`)
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const path: string = `/api/v1/dags/web_hold/runs?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
      const page = (await call('GET', path, { headers: bearer(tokens.viewer) })).json()
      assert.ok(page.runs.length <= 3)
      seen.push(...page.runs.map((r: { run_id: string }) => r.run_id))
      cursor = page.next_cursor
    } while (cursor)
    assert.deepEqual(seen, rows.map((r) => r.run_id))
    assert.equal((await call('GET', '/api/v1/dags/web_hold/runs?cursor=garbage', { headers: bearer(tokens.viewer) })).status, 400)
    // An empty cursor (a client that always sends the last next_cursor, '' before the first page) is the first page.
    const first = await call('GET', '/api/v1/dags/web_hold/runs?limit=3&cursor=', { headers: bearer(tokens.viewer) })
    assert.equal(first.status, 200, first.body)
    assert.deepEqual(first.json().runs.map((r: { run_id: string }) => r.run_id), rows.slice(0, 3).map((r) => r.run_id))
    assert.equal((await call('GET', '/api/v1/dags/web_hold/runs?limit=0', { headers: bearer(tokens.viewer) })).status, 400)
    assert.equal((await call('GET', '/api/v1/dags/web_hold/runs?limit=501', { headers: bearer(tokens.viewer) })).status, 400)
    assert.equal((await call('GET', '/api/v1/dags/nope/runs', { headers: bearer(tokens.viewer) })).status, 404)
    const queued = (await call('GET', '/api/v1/dags/web_hold/runs?state=queued&limit=500', { headers: bearer(tokens.viewer) })).json()
    assert.ok(queued.runs.length >= 5 && queued.runs.every((r: { state: string }) => r.state === 'queued'))
  })

  test('cancel and clear report what they did; clearing an active run is a conflict', async () => {
    const runId = await queuedRun()
    const cancelled = (await call('POST', `/api/v1/runs/${runId}/cancel`, { headers: bearer(tokens.operator) })).json()
    assert.deepEqual(cancelled, { run_id: runId, state: 'cancelled', previous_state: 'queued' })
    const again = (await call('POST', `/api/v1/runs/${runId}/cancel`, { headers: bearer(tokens.operator) })).json()
    assert.equal(again.previous_state, 'cancelled')
    const cleared = (await call('POST', `/api/v1/runs/${runId}/clear`, { headers: bearer(tokens.operator), body: { task: 'wait' } })).json()
    assert.deepEqual(cleared, { run_id: runId, state: 'queued', cleared: ['wait'] })
    assert.equal((await call('POST', `/api/v1/runs/${runId}/clear`, { headers: bearer(tokens.operator) })).status, 409)
    assert.equal((await call('POST', `/api/v1/runs/nope/cancel`, { headers: bearer(tokens.operator) })).status, 404)
    const other = await cancelledRun()
    assert.equal((await call('POST', `/api/v1/runs/${other}/clear`, { headers: bearer(tokens.operator), body: { task: 'nope' } })).status, 404)
  })

  test('logs follow as server-sent events: stored lines, then new ones, until the task ends', async () => {
    const runId = await engine.trigger('web_slow')
    const stream = await readEventStream(base, `/api/v1/runs/${runId}/tasks/tick/logs?follow=true`, { ...bearer(tokens.viewer), accept: 'text/event-stream' })
    seenBodies.push(stream.raw)
    assert.equal(stream.status, 200)
    assert.match(String(stream.contentType), /^text\/event-stream/)
    const lines = stream.events.filter((e) => e.event === 'line').map((e) => JSON.parse(e.data).line)
    assert.deepEqual(lines.filter((l: string) => l.startsWith('tick')), ['tick 1', 'tick 2', 'tick 3', 'tick 4', 'tick 5'])
    const ids = stream.events.filter((e) => e.event === 'line').map((e) => e.id)
    assert.ok(ids.every((id) => /^1:\d+$/.test(String(id))), `SSE ids are attempt:line: ${ids.join(' ')}`)
    const numbers = ids.map((id) => Number(String(id).split(':')[1]))
    assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b), 'event ids increase')
    assert.deepEqual(stream.events[0] && [stream.events[0].event, JSON.parse(stream.events[0].data).attempt], ['attempt', 1])
    const end = stream.events.at(-1)!
    assert.equal(end.event, 'end')
    assert.deepEqual(JSON.parse(end.data), { state: 'success', attempt: 1 })

    // A finished task: its lines, then the end at once.
    const again = await readEventStream(base, `/api/v1/runs/${runId}/tasks/tick/logs?follow=true&attempt=1`, bearer(tokens.viewer), 5000)
    seenBodies.push(again.raw)
    assert.equal(again.events.filter((e) => e.event === 'line').length, stream.events.filter((e) => e.event === 'line').length)
    assert.equal(again.events.at(-1)!.event, 'end')

    const unauthorised = await readEventStream(base, `/api/v1/runs/${runId}/tasks/tick/logs?follow=true`, {}, 5000)
    assert.equal(unauthorised.status, 401)
    assert.equal((await call('GET', `/api/v1/runs/${runId}/tasks/tick/logs?follow=true&attempt=9`, { headers: bearer(tokens.viewer) })).status, 404)
    assert.equal((await call('GET', `/api/v1/runs/${runId}/tasks/nope/logs`, { headers: bearer(tokens.viewer) })).status, 404)
  })

  test('logs from the tail: tail and before page backwards, follow starts at the last 1000 lines, Last-Event-ID resumes', async () => {
    const runId = await engine.trigger('web_many')
    assert.equal((await waitForRunState(runId, ['success', 'failed'])).state, 'success')
    const path = `/api/v1/runs/${runId}/tasks/count/logs`
    const get = async (query: string) => {
      const r = await call('GET', `${path}?${query}`, { headers: bearer(tokens.viewer) })
      assert.equal(r.status, 200, r.body)
      return r.json()
    }
    // Line 1 is the operator's "running script"; the numbers 1..1500 are lines 2..1501.
    const last = await get('tail=3')
    assert.deepEqual(last.lines.map((l: { id: number; line: string }) => [l.id, l.line]), [[1499, '1498'], [1500, '1499'], [1501, '1500']])
    assert.equal(last.next_before, 1499)
    assert.equal(last.next_after, null)
    const earlier = await get(`before=${last.next_before}&tail=2`)
    assert.deepEqual(earlier.lines.map((l: { line: string }) => l.line), ['1496', '1497'])
    assert.equal(earlier.next_before, 1497)
    assert.equal(earlier.next_after, 1498)
    const first = await get('before=3&tail=10')
    assert.deepEqual(first.lines.map((l: { id: number }) => l.id), [1, 2])
    assert.equal(first.next_before, null)
    assert.equal((await call('GET', `${path}?tail=-1`, { headers: bearer(tokens.viewer) })).status, 400)

    // Following a finished task: the last 1000 lines only, after an attempt event saying there are earlier ones.
    const followed = await readEventStream(base, `${path}?follow=true`, bearer(tokens.viewer), 10_000)
    seenBodies.push(followed.raw)
    const attempt = followed.events.find((e) => e.event === 'attempt')!
    assert.deepEqual(JSON.parse(attempt.data), { attempt: 1, earlier: true })
    const lines = followed.events.filter((e) => e.event === 'line').map((e) => JSON.parse(e.data).line)
    assert.deepEqual(lines, Array.from({ length: 1000 }, (_, i) => String(i + 501)))
    assert.equal(followed.events.at(-1)!.event, 'end')
    const none = await readEventStream(base, `${path}?follow=true&tail=0`, bearer(tokens.viewer), 10_000)
    assert.deepEqual(none.events.map((e) => e.event), ['attempt', 'end'])
    // A reconnecting EventSource carries on after the last line it had.
    const resumed = await readEventStream(base, `${path}?follow=true`, { ...bearer(tokens.viewer), 'last-event-id': '1:1495' }, 10_000)
    assert.deepEqual(resumed.events.filter((e) => e.event === 'line').map((e) => e.id), ['1:1496', '1:1497', '1:1498', '1:1499', '1:1500', '1:1501'])

    // `follow` is a flag: given bare (`?follow`, as SPEC section 6 writes it) or as 1/yes/on it streams, 0/false/no it does not.
    for (const query of ['follow', 'follow=', 'follow=1', 'follow=yes', 'follow=on', 'follow=TRUE']) {
      const flagged = await readEventStream(base, `${path}?${query}&tail=0`, bearer(tokens.viewer), 10_000)
      assert.equal(flagged.status, 200, `?${query}: ${flagged.raw}`)
      assert.deepEqual(flagged.events.map((e) => e.event), ['attempt', 'end'], `?${query}`)
    }
    for (const query of ['follow=0', 'follow=false', 'follow=no', 'follow=off']) {
      const page = await get(`${query}&tail=1`)
      assert.deepEqual(page.lines.map((l: { line: string }) => l.line), ['1500'], `?${query}`)
    }
    assert.equal((await call('GET', `${path}?follow=maybe`, { headers: bearer(tokens.viewer) })).status, 400)
  })

  test('clearing a run whose task instances all succeeded changes nothing and says so: the run keeps its state', async () => {
    const runId = await engine.trigger('web_many')
    assert.equal((await waitForRunState(runId, ['success', 'failed'])).state, 'success')
    const r = await call('POST', `/api/v1/runs/${runId}/clear`, { headers: bearer(tokens.operator) })
    assert.equal(r.status, 200, r.body)
    assert.deepEqual(r.json(), { run_id: runId, state: 'success', cleared: [] })
    const run = (await call('GET', `/api/v1/runs/${runId}`, { headers: bearer(tokens.viewer) })).json()
    assert.equal(run.state, 'success')
  })

  test('the log download is the whole attempt as a text file, masked, with optional timestamps', async () => {
    const r = await call('POST', '/api/v1/dags/web_demo/runs', { headers: bearer(tokens.operator), body: { params: { word: 'downloaded' } } })
    const runId = r.json().run_id as string
    await waitForRunState(runId, ['success'])
    const path = `/api/v1/runs/${runId}/tasks/hello/logs/download`
    const plain = await call('GET', path, { headers: bearer(tokens.viewer) })
    assert.equal(plain.status, 200, plain.body)
    assert.match(String(plain.headers['content-type']), /^text\/plain; charset=utf-8/)
    assert.equal(plain.headers['content-disposition'], `attachment; filename="${runId.replace(/[^A-Za-z0-9._-]/g, '_')}.hello.1.log"`)
    const lines = plain.body.split('\n')
    assert.ok(lines.includes('word=downloaded'), plain.body)
    assert.ok(lines.includes('token=***'), plain.body)
    assert.ok(!plain.body.includes(CANARY))
    assert.equal(lines.at(-1), '', 'every line ends with a newline')
    const stamped = await call('GET', `${path}?timestamps=true&attempt=1`, { headers: { cookie: sessions.viewer.cookie } })
    assert.equal(stamped.status, 200)
    assert.ok(stamped.body.split('\n').some((l) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z word=downloaded$/.test(l)), stamped.body)
    assert.equal((await call('GET', path)).status, 401)
    assert.equal((await call('GET', `${path}?attempt=2`, { headers: bearer(tokens.viewer) })).status, 404)
  })

  test('the web process masks secrets it knows in every response, as a second line of defence', async (t) => {
    const secret = `zebra-${randomBytes(6).toString('hex')}`
    const server = await startServer({ secrets: { env: { CAIRN_SECRET_ZEBRA: secret } } })
    t.after(() => server.app.close())
    const created = await call('POST', '/api/v1/dags/web_hold/runs', { headers: bearer(tokens.operator), body: { params: {}, logical_date: '2021-03-04' } }, server.base)
    assert.equal(created.status, 201)
    await engine.db.query(`UPDATE cairn.run SET params = $2 WHERE run_id = $1`, [created.json().run_id, JSON.stringify({ note: `pass ${secret} here` })])
    const listed = await rawRequest(server.base, 'GET', `/api/v1/runs/${created.json().run_id}`, { headers: bearer(tokens.viewer) })
    assert.equal(listed.json().params.note, 'pass *** here')
    assert.ok(!listed.body.includes(secret))
  })
})

describe('metrics, canary, health', () => {
  test('/metrics is open and reports runs, task instances, queue depth, durations and worker heartbeats', async () => {
    const r = await call('GET', '/metrics')
    assert.equal(r.status, 200)
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/)
    const { samples, types } = parsePrometheus(r.body)
    const find = (name: string, labels: Record<string, string> = {}) => samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    assert.ok(find('cairn_runs', { state: 'success' })[0]!.value >= 1)
    assert.deepEqual(Object.keys(find('cairn_runs')[0]!.labels), ['state'])
    const hello = find('cairn_task_instances', { dag_id: 'web_demo', task_id: 'hello', state: 'success' })
    assert.ok(hello[0]!.value >= 1, 'hello of the API-triggered run')
    assert.ok(find('cairn_task_instances', { dag_id: 'web_demo', task_id: 'after', state: 'success' })[0]!.value >= 1)
    assert.deepEqual(Object.keys(hello[0]!.labels).sort(), ['dag_id', 'state', 'task_id'])
    assert.ok(find('cairn_task_instances', { dag_id: 'web_hold', task_id: 'wait', state: 'running' })[0]!.value >= 1, 'the blocker')
    assert.equal(find('cairn_queue_depth', { source: 'task_instances' }).length, 1)
    assert.equal(find('cairn_queue_depth', { source: 'pgboss' }).length, 1)
    assert.equal(types.get('cairn_task_duration_seconds'), 'histogram')
    const buckets = find('cairn_task_duration_seconds_bucket', { dag_id: 'web_slow', task_id: 'tick', state: 'success' })
    assert.ok(buckets.length > 2)
    const count = find('cairn_task_duration_seconds_count', { dag_id: 'web_slow', task_id: 'tick', state: 'success' })[0]!.value
    assert.equal(buckets.find((b) => b.labels.le === '+Inf')!.value, count)
    assert.equal(buckets.find((b) => b.labels.le === '1')!.value, 0, 'tick takes 1.5 s')
    assert.equal(buckets.find((b) => b.labels.le === '5')!.value, count)
    assert.ok(find('cairn_task_duration_seconds_sum', { dag_id: 'web_slow', task_id: 'tick', state: 'success' })[0]!.value >= 1.5 * count)
    const values = buckets.map((b) => b.value)
    assert.deepEqual(values, [...values].sort((a, b) => a - b), 'buckets are cumulative')
    const heartbeats = find('cairn_worker_heartbeat_age_seconds')
    assert.equal(heartbeats.length, 1)
    assert.ok(heartbeats[0]!.labels.worker_id && heartbeats[0]!.labels.hostname)
    assert.ok(heartbeats[0]!.value >= 0 && heartbeats[0]!.value < 30)
    assert.ok(find('cairn_web_process_cpu_user_seconds_total').length === 1)
    // The in-process scheduler of this test reports its passes every few seconds.
    const passes = find('cairn_scheduler_passes_total')
    assert.equal(passes.length, 1, 'one running scheduler')
    assert.ok(passes[0]!.value >= 1 && passes[0]!.labels.scheduler_id && passes[0]!.labels.hostname)
    assert.equal(types.get('cairn_scheduler_passes_total'), 'counter')
    const last = find('cairn_scheduler_pass_seconds', { pass: 'last' })[0]!.value
    assert.ok(last > 0 && last < 5, `last pass took ${last} s`)
    assert.ok(find('cairn_scheduler_pass_seconds', { pass: 'max' })[0]!.value >= last || find('cairn_scheduler_pass_seconds_total')[0]!.value >= last)
    assert.ok(find('cairn_scheduler_heartbeat_age_seconds')[0]!.value < 30)
    seenBodies.push(r.body)
  })

  test('the canary secret never appears in an API response, /metrics or the stored logs and outputs', async () => {
    // Make sure the canary was really used: a task read it and echoed it (masked).
    const { rows: used } = await engine.db.query(`SELECT 1 FROM cairn.task_log WHERE line = 'token=***'`)
    assert.ok(used.length >= 1)
    seenBodies.push((await call('GET', '/metrics')).body)
    for (const body of seenBodies) assert.ok(!body.includes(CANARY), `the canary leaked in: ${body.slice(0, 500)}`)
    assert.ok(seenBodies.length > 100)
    const { rows } = await engine.db.query(
      `SELECT 'log' AS what FROM cairn.task_log WHERE strpos(line, $1) > 0
       UNION ALL SELECT 'outputs' FROM cairn.task_instance WHERE strpos(outputs::text, $1) > 0
       UNION ALL SELECT 'message' FROM cairn.task_instance WHERE strpos(message, $1) > 0
       UNION ALL SELECT 'params' FROM cairn.run WHERE strpos(params::text, $1) > 0`,
      [CANARY],
    )
    assert.deepEqual(rows, [])
    // Nor in what the engine's processes logged, at debug level, about the runs that used it.
    const logged = processLogs.join('')
    assert.match(logged, /"level":20/, 'debug lines were logged')
    assert.match(logged, /web_demo/, 'the worker logged the runs that used the secret')
    assert.ok(!logged.includes(CANARY), 'the canary leaked into a process log')
  })

  test('/healthz is 503 while the database is down and 200 once it is back', async (t) => {
    const defer = cleanupStack(t)
    const pg = await startRestartablePostgres(defer)
    const log = testLogger()
    const db = createDb(pg.url, { log, max: 2, connectTimeoutMs: 1000 })
    defer(() => db.close())
    await migrate(db, log)
    const server = await startServer({ healthTimeoutMs: 2000 }, db)
    defer(() => server.app.close())
    const health = () => rawRequest(server.base, 'GET', '/healthz')
    assert.equal((await health()).status, 200)
    assert.equal((await rawRequest(server.base, 'GET', '/metrics')).status, 200)

    await pg.stop()
    const started = Date.now()
    const down = await health()
    assert.equal(down.status, 503)
    assert.equal(down.json().status, 'unavailable')
    assert.ok(Date.now() - started < 3000, 'answers within the timeout')
    assert.equal((await rawRequest(server.base, 'GET', '/metrics')).status, 503)
    const api = await rawRequest(server.base, 'GET', '/api/v1/dags', { headers: bearer('cairn_whatever') })
    assert.equal(api.status, 503, 'no database, no way to check credentials: unavailable, not unauthorised')

    await pg.start()
    await waitFor('/healthz to answer 200 again', async () => ((await health()).status === 200 ? true : undefined), 20_000, 200)
  })
})
