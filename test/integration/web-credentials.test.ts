/**
 * Credentials that stop working: revoked and expired tokens, disabled users (their sessions and the
 * tokens they own), each refused at once and ending the streams they hold open; the admin API for
 * tokens and users; /metrics behind web.metrics_auth. A real web server on a fresh database.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'
import { createUser } from '../../engine/web/auth/users.ts'
import { metricsAccessOf } from '../../engine/web/server.ts'
import type { WebServerOptions } from '../../engine/web/server.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'
import { waitFor } from '../helpers/engine-extra.ts'
import { openStream, rawRequest, startTestWeb } from '../helpers/web-client.ts'
import type { OpenStream, RequestOptions } from '../helpers/web-client.ts'

const PASSWORD = 'correct horse battery'
/** How long an open stream may take to notice a dead credential (checks every 300 ms here; a loaded machine is slow). */
const STREAM_END_MS = 10_000

let db: Db
let app: FastifyInstance
let base: string
let adminToken: string
const teardown: (() => Promise<void>)[] = []

before(async () => {
  const url = await createTestDatabase({ after: (fn) => void teardown.push(fn) })
  const log = testLogger()
  db = createDb(url, { log, max: 5 })
  await migrate(db, log)
  for (const [username, role] of [['root', 'admin'], ['ada', 'admin'], ['olga', 'operator'], ['vic', 'viewer']] as const) {
    await createUser(db, { username, role, password: PASSWORD })
  }
  adminToken = (await createToken(db, { name: 'admin-cli', role: 'admin', createdBy: 'cli' }))!.token
  await seedPendingTask(db)
  ;({ app, base } = await startServer({}))
})
after(async () => {
  await app.close()
  await db.close()
  for (const step of teardown.reverse()) await step()
})

function startServer(options: Partial<WebServerOptions>): Promise<{ app: FastifyInstance; base: string }> {
  return startTestWeb({ db, log: testLogger(), credentialCheckMs: 300, followPollMs: 200, login: { perIp: 1000, perUser: 1000, perUserAnywhere: 1000 }, ...options })
}

/** A run whose one task never starts: following its log keeps the stream open until something ends it. */
async function seedPendingTask(q: Db): Promise<void> {
  await q.query(`INSERT INTO cairn.dag (dag_id) VALUES ('held')`)
  const { rows } = await q.query<{ version_id: string }>(`INSERT INTO cairn.dag_version (dag_id, hash, spec, source) VALUES ('held', 'h', '{}', '') RETURNING version_id`)
  await q.query(
    `INSERT INTO cairn.run (run_id, dag_id, version_id, run_type, state, logical_date, data_interval_start, data_interval_end)
     VALUES ('held-run', 'held', $1, 'manual', 'queued', now(), now(), now())`,
    [rows[0]!.version_id],
  )
  await q.query(`INSERT INTO cairn.task_instance (run_id, task_id, state) VALUES ('held-run', 'wait', 'pending')`)
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
const call = (method: string, path: string, options: RequestOptions = {}) => rawRequest(base, method, path, options)
const asAdmin = (method: string, path: string, body?: unknown) => call(method, path, { headers: bearer(adminToken), ...(body === undefined ? {} : { body }) })

async function login(username: string): Promise<{ cookie: string; csrf: string }> {
  const r = await call('POST', '/api/v1/login', { body: { username, password: PASSWORD } })
  assert.equal(r.status, 200, r.body)
  const setCookie = [r.headers['set-cookie']].flat().find((c) => c?.startsWith('cairn_session='))!
  return { cookie: setCookie.split(';')[0]!, csrf: r.json().csrf_token }
}

async function newToken(name: string, role: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await asAdmin('POST', '/api/v1/tokens', { name, role, ...extra })
  assert.equal(r.status, 201, r.body)
  return r.json().token
}

/** Opens both kinds of stream (live events, a followed log) and waits until each is listening. */
async function openStreams(headers: Record<string, string>): Promise<OpenStream[]> {
  const streams = [await openStream(base, '/api/v1/events', headers), await openStream(base, '/api/v1/runs/held-run/tasks/wait/logs?follow=true', headers)]
  for (const s of streams) assert.equal(s.status, 200)
  await waitFor('the event stream to be ready', () => streams[0]!.events().some((e) => e.event === 'ready'), 10_000)
  return streams
}

/** Each stream ends by itself within STREAM_END_MS, its last event `unauthorized`. */
async function assertStreamsEnd(streams: OpenStream[], why: string): Promise<void> {
  for (const s of streams) {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${why}: the stream stayed open for ${STREAM_END_MS} ms; got ${JSON.stringify(s.events())}`)), STREAM_END_MS)
    })
    try {
      const events = await Promise.race([s.ended, timeout])
      assert.equal(events.at(-1)?.event, 'unauthorized', `${why}: ${JSON.stringify(events)}`)
    } finally {
      clearTimeout(timer)
      s.close()
    }
  }
}

describe('tokens', () => {
  test('a revoked token gets 401 at once, and its open log and event streams end within seconds', async () => {
    const token = await newToken('to-revoke', 'viewer')
    assert.equal((await call('GET', '/api/v1/dags', { headers: bearer(token) })).status, 200)
    const streams = await openStreams(bearer(token))
    const other = await openStream(base, '/api/v1/events', bearer(adminToken))

    assert.equal((await asAdmin('POST', '/api/v1/tokens/to-revoke/revoke')).status, 204)
    assert.equal((await call('GET', '/api/v1/dags', { headers: bearer(token) })).status, 401, 'refused on the very next request')
    await assertStreamsEnd(streams, 'revoked token')
    assert.equal((await asAdmin('POST', '/api/v1/tokens/to-revoke/revoke')).status, 404, 'nothing left to revoke')

    // Another credential's stream stays open.
    assert.ok(!(await Promise.race([other.ended.then(() => true), new Promise((r) => setTimeout(() => r(false), 1000))])), 'the admin stream was not ended')
    other.close()

    // The name can be used again, and the new token is a different one.
    const again = await newToken('to-revoke', 'viewer')
    assert.notEqual(again, token)
    assert.equal((await call('GET', '/api/v1/dags', { headers: bearer(again) })).status, 200)
    assert.equal((await call('GET', '/api/v1/dags', { headers: bearer(token) })).status, 401)
  })

  test('an expired token gets 401, and its open stream ends', async () => {
    const created = await asAdmin('POST', '/api/v1/tokens', { name: 'short-lived', role: 'viewer', expires_in: '3s' })
    assert.equal(created.status, 201, created.body)
    const { token, expires_at: expiresAt } = created.json()
    const ttl = Date.parse(expiresAt) - Date.now()
    assert.ok(ttl > 1000 && ttl <= 3500, `expires in ${ttl} ms`)
    assert.equal((await call('GET', '/api/v1/dags', { headers: bearer(token) })).status, 200)
    const streams = await openStreams(bearer(token))
    await waitFor('the token to expire', async () => (await call('GET', '/api/v1/dags', { headers: bearer(token) })).status === 401, 15_000, 200)
    assert.ok(Date.now() >= Date.parse(expiresAt) - 50, 'not before its expiry')
    await assertStreamsEnd(streams, 'expired token')
    const listed = (await asAdmin('GET', '/api/v1/tokens')).json().tokens.find((t: { name: string }) => t.name === 'short-lived')
    assert.equal(listed.state, 'expired')

    for (const bad of ['soon', '0s', '-1d', '90']) assert.equal((await asAdmin('POST', '/api/v1/tokens', { name: `bad-${bad.length}`, role: 'viewer', expires_in: bad })).status, 400, bad)
  })

  test('the token list shows name, role, state, created, expires and last use, never the token', async () => {
    const token = await newToken('listed', 'operator', { expires_in: '90d' })
    assert.equal((await call('GET', '/api/v1/dags', { headers: bearer(token) })).status, 200)
    const r = await asAdmin('GET', '/api/v1/tokens')
    assert.equal(r.status, 200, r.body)
    assert.ok(!r.body.includes(token) && !r.body.includes(token.slice(6, 30)), 'no token secret in the listing')
    const listed = r.json().tokens.find((t: { name: string }) => t.name === 'listed')
    assert.equal(listed.role, 'operator')
    assert.equal(listed.state, 'active')
    assert.equal(listed.created_by, 'token admin-cli')
    const days = (Date.parse(listed.expires_at) - Date.parse(listed.created_at)) / 86_400_000
    assert.ok(Math.abs(days - 90) < 0.01, `expires after ${days} days`)
    assert.ok(Date.now() - Date.parse(listed.last_used_at) < 60_000, `last used ${listed.last_used_at}`)
    assert.equal((await call('GET', '/api/v1/tokens', { headers: bearer(token) })).status, 403, 'only admins see tokens')

    assert.ok(!(await asAdmin('GET', '/api/v1/tokens')).json().tokens.some((t: { name: string; state: string }) => t.state === 'revoked'))
    assert.ok((await asAdmin('GET', '/api/v1/tokens?all=true')).json().tokens.some((t: { name: string; state: string }) => t.name === 'to-revoke' && t.state === 'revoked'))
  })
})

describe('users', () => {
  test("a disabled user's session and the tokens they made get 401 at once, and their open streams end", async () => {
    const session = await login('olga')
    const admin = await login('ada')
    const made = await call('POST', '/api/v1/tokens', { headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf }, body: { name: 'adas-bot', role: 'viewer' } })
    assert.equal(made.status, 201, made.body)
    assert.equal(made.json().owner, 'ada')
    const adasToken: string = made.json().token
    const streams = [...(await openStreams({ cookie: session.cookie })), ...(await openStreams(bearer(adasToken)))]

    assert.equal((await asAdmin('POST', '/api/v1/users/olga/disable')).json().disabled, true)
    assert.equal((await asAdmin('POST', '/api/v1/users/ada/disable')).status, 200)
    assert.equal((await call('GET', '/api/v1/dags', { headers: { cookie: session.cookie } })).status, 401, "the disabled user's session")
    assert.equal((await call('GET', '/api/v1/dags', { headers: { cookie: admin.cookie } })).status, 401)
    assert.equal((await call('GET', '/api/v1/dags', { headers: bearer(adasToken) })).status, 401, 'a token the disabled user made')
    assert.equal((await call('POST', '/api/v1/login', { body: { username: 'olga', password: PASSWORD } })).status, 401)
    await assertStreamsEnd(streams, 'disabled user')
    const listed = (await asAdmin('GET', '/api/v1/tokens')).json().tokens.find((t: { name: string }) => t.name === 'adas-bot')
    assert.equal(listed.state, 'owner_disabled')

    assert.equal((await asAdmin('POST', '/api/v1/users/olga/enable')).json().disabled, false)
    await login('olga')
    assert.equal((await asAdmin('POST', '/api/v1/users/ada/enable')).status, 200)
    assert.equal((await call('GET', '/api/v1/dags', { headers: bearer(adasToken) })).status, 200, 'enabled again, the token works again')
    assert.equal((await asAdmin('POST', '/api/v1/users/nobody/disable')).status, 404)
  })

  test('the API will not disable the last active admin', async () => {
    assert.equal((await asAdmin('POST', '/api/v1/users/ada/disable')).status, 200)
    const last = await asAdmin('POST', '/api/v1/users/root/disable')
    assert.equal(last.status, 409, last.body)
    assert.equal(last.json().error, 'last_admin')
    assert.equal((await asAdmin('POST', '/api/v1/users/ada/enable')).status, 200)
  })

  test('a common password is refused with the reason, not only a short one', async () => {
    for (const [password, why] of [['password', /too common/], ['Password1!', /too common/], ['qwertyuiop', /too common/], ['abcdefghijkl', /too guessable/], ['newuser2024', /too guessable/]] as const) {
      const r = await asAdmin('POST', '/api/v1/users', { username: 'newuser', password, role: 'viewer' })
      assert.equal(r.status, 400, `${password}: ${r.body}`)
      assert.match(r.json().message, why, password)
    }
    assert.equal((await asAdmin('POST', '/api/v1/users', { username: 'newuser', password: 'quiet lantern orbit', role: 'viewer' })).status, 201)
  })
})

describe('/metrics', () => {
  test('open by default; with web.metrics_auth it needs a token of the role given', async (t) => {
    assert.equal((await call('GET', '/metrics')).status, 200, 'open unless configured')
    const viewer = await newToken('scraper', 'viewer')

    const locked = await startServer({ metricsAccess: 'viewer' })
    t.after(() => locked.app.close())
    const anonymous = await rawRequest(locked.base, 'GET', '/metrics')
    assert.equal(anonymous.status, 401)
    assert.equal((await rawRequest(locked.base, 'GET', '/metrics', { headers: bearer('cairn_not-a-token') })).status, 401)
    const scraped = await rawRequest(locked.base, 'GET', '/metrics', { headers: bearer(viewer) })
    assert.equal(scraped.status, 200, scraped.body)
    assert.match(String(scraped.headers['content-type']), /text\/plain/)

    const adminOnly = await startServer({ metricsAccess: 'admin' })
    t.after(() => adminOnly.app.close())
    assert.equal((await rawRequest(adminOnly.base, 'GET', '/metrics', { headers: bearer(viewer) })).status, 403)
    assert.equal((await rawRequest(adminOnly.base, 'GET', '/metrics', { headers: bearer(adminToken) })).status, 200)

    assert.deepEqual([undefined, false, true, 'viewer', 'operator', 'admin', 'root'].map(metricsAccessOf), ['public', 'public', 'viewer', 'viewer', 'operator', 'admin', 'admin'])
  })
})
