/**
 * The web process's in-memory caches (verified bearer tokens, online feature rows) never outlive the
 * change that made them wrong: a materialization's rows reach lookups within a second of its commit,
 * a token revoked or a user disabled by another process (the CLI) is refused as soon as the
 * notification arrives (its open streams end too), nothing is answered from memory
 * while the notification connection is down, and the online cache holds no more rows than allowed.
 * Two web servers share one database here, as two `cairn web` processes would, and the CLI runs in
 * processes of its own.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { createDatasets } from '../../engine/data/datasets.ts'
import type { Datasets } from '../../engine/data/datasets.ts'
import { createFeatureStore } from '../../engine/data/feature-store.ts'
import type { FeatureStore } from '../../engine/data/feature-store.ts'
import { normalizeFeatureView } from '../../engine/data/feature-definition.ts'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { saveFeatureViews } from '../../engine/store/feature-views.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'
import { createUser } from '../../engine/web/auth/users.ts'
import type { WebServerOptions } from '../../engine/web/server.ts'
import { seedVersion } from '../helpers/datasets.ts'
import { runCommand, waitFor } from '../helpers/engine-extra.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'
import { openStream, rawRequest, startTestWeb } from '../helpers/web-client.ts'

const MAIN = new URL('../../engine/cli/main.ts', import.meta.url).pathname
const INTERVAL_END = new Date('2026-01-02T00:00:00Z')

let db: Db
let dbUrl: string
let dir: string
let datasets: Datasets
let store: FeatureStore
let adminToken: string
let readerToken: string
const servers: FastifyInstance[] = []
const teardown: (() => Promise<void>)[] = []

before(async () => {
  dbUrl = await createTestDatabase({ after: (fn) => void teardown.push(fn) })
  const log = testLogger()
  db = createDb(dbUrl, { log, max: 5 })
  await migrate(db, log)
  dir = mkdtempSync(join(tmpdir(), 'cairn-web-caches-'))
  datasets = createDatasets({ db, dir, producer: { kind: 'actor', actor: 'test' } })
  const view = normalizeFeatureView({ feature_view: 'spend', entity: ['user_id'], source: 'orders', timestamp: 'ts', online: true, features: { total: { agg: 'sum', column: 'amount' } } })
  await db.tx((q) => saveFeatureViews(q, [{ name: 'spend', file: 'spend.yaml', hash: view.hash, definitionJson: view.definitionJson, source: '', description: null, owner: null, tags: [] }]))
  store = createFeatureStore({ db, datasets, producer: { kind: 'actor', actor: 'test' } })
  await materializeAmounts([1, 2, 3, 4, 5])
  adminToken = (await createToken(db, { name: 'admin', role: 'admin' }))!.token
  readerToken = (await createToken(db, { name: 'reader', role: 'viewer' }))!.token
})
after(async () => {
  for (const app of servers) await app.close()
  await db.close()
  rmSync(dir, { recursive: true, force: true })
  for (const step of teardown.reverse()) await step()
})

/** Publishes orders where user u<i> spent amounts[i] once, and materializes the interval (its online rows replace the previous ones). */
async function materializeAmounts(amounts: number[]): Promise<void> {
  const values = amounts.map((a, i) => `('u${i}', TIMESTAMPTZ '2026-01-01 10:00:00+00', ${a}::DOUBLE)`).join(', ')
  await seedVersion(datasets, 'orders', `SELECT * FROM (VALUES ${values}) t(user_id, ts, amount)`)
  await store.materialize({ view: 'spend', intervalStart: INTERVAL_END, intervalEnd: INTERVAL_END })
}

async function serve(options: Partial<WebServerOptions> = {}): Promise<string> {
  const { app, base } = await startTestWeb({ db, log: testLogger(), ...options })
  servers.push(app)
  return base
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
async function total(base: string, user: string): Promise<unknown> {
  const r = await rawRequest(base, 'GET', `/api/v1/features/spend/online?user_id=${user}`, { headers: bearer(readerToken) })
  assert.equal(r.status, 200, r.body)
  return r.json().features.total
}
/** Changes a stored online row behind the caches' back (no notification), to see whether a server answers from memory. */
async function overwriteQuietly(user: string, value: number): Promise<void> {
  await db.query(`UPDATE cairn.feature_online SET features = jsonb_build_object('total', $2::float8) WHERE view = 'spend' AND entity_key = $1`, [JSON.stringify([user]), value])
}

test('a lookup after a materialization commits sees its values within a second, on every web server', async () => {
  const [a, b] = [await serve(), await serve()]
  assert.equal(await total(a, 'u1'), 2)
  assert.equal(await total(b, 'u1'), 2)
  // The rows are cached: a change that sends no notification is not seen.
  await overwriteQuietly('u1', -1)
  assert.equal(await total(a, 'u1'), 2, 'answered from memory')
  assert.equal(await total(b, 'u1'), 2, 'answered from memory')

  await materializeAmounts([10, 20, 30, 40, 50])
  const committed = Date.now()
  for (const base of [a, b]) {
    await waitFor('the new online values', async () => (await total(base, 'u1')) === 20, 5_000, 10)
    const waited = Date.now() - committed
    assert.ok(waited <= 1000, `new values seen ${waited} ms after the commit`)
  }
  assert.equal(await total(a, 'u4'), 50)
  // An entity without a row is cached as absent and found once materialized.
  const missing = await rawRequest(a, 'GET', '/api/v1/features/spend/online?user_id=u5', { headers: bearer(readerToken) })
  assert.equal(missing.json().found, false)
  await materializeAmounts([10, 20, 30, 40, 50, 60])
  await waitFor('the new entity', async () => (await total(a, 'u5')) === 60, 1000, 10)
})

test('nothing is answered from memory while the notification connection is down, and caching resumes after it is back', async () => {
  await materializeAmounts([10, 20, 30])
  const base = await serve()
  assert.equal(await total(base, 'u2'), 30)
  await overwriteQuietly('u2', 31)
  assert.equal(await total(base, 'u2'), 30, 'answered from memory')
  const killed = await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN "cairn_cache"'`)
  assert.ok((killed.rowCount ?? 0) >= 1, 'a LISTEN connection was found')
  // The change made while the server trusted its cache shows as soon as it notices the lost connection.
  await waitFor('the quiet change to show', async () => (await total(base, 'u2')) === 31, 10_000, 20)
  // Back to listening: a quiet change is hidden by the cache again.
  await waitFor('caching to resume', async () => {
    const first = (await total(base, 'u2')) as number
    await overwriteQuietly('u2', first + 1)
    return (await total(base, 'u2')) === first
  }, 15_000, 100)
  await materializeAmounts([10, 20, 30, 40, 50, 60])
  await waitFor('materialized values after the reconnect', async () => (await total(base, 'u2')) === 30, 1000, 10)
})

test('the online cache holds at most web.online_cache_rows rows', async () => {
  await materializeAmounts([10, 20, 30, 40, 50])
  const base = await serve({ onlineCacheRows: 2 })
  const users = ['u0', 'u1', 'u2', 'u3', 'u4']
  for (const u of users) await total(base, u)
  for (const [i, u] of users.entries()) await overwriteQuietly(u, 1000 + i)
  // Newest first: the rows still cached answer before newer reads evict them.
  let stale = 0
  for (const [i, u] of [...users.entries()].reverse()) if ((await total(base, u)) !== 1000 + i) stale++
  assert.equal(stale, 2, 'the two rows read last were answered from memory, and no more')
  await materializeAmounts([10, 20, 30, 40, 50, 60])
})

test('a token revoked or a user disabled by another process is refused by the web server at once, and its streams end', async () => {
  // The server trusts a verified token for a minute and re-checks streams every minute: only the notification can stop them sooner.
  const base = await serve({ tokenCacheMs: 60_000, credentialCheckMs: 60_000 })
  const cairn = (args: string[]) => runCommand(process.execPath, [MAIN, ...args], { env: { ...process.env, DATABASE_URL: dbUrl, CAIRN_LOG_LEVEL: 'warn' } })
  const status = async (token: string) => (await rawRequest(base, 'GET', '/api/v1/session', { headers: bearer(token) })).status
  const token = (await createToken(db, { name: 'short', role: 'viewer' }))!.token
  assert.equal(await status(token), 200)
  const stream = await openStream(base, '/api/v1/events', bearer(token))
  assert.equal(stream.status, 200)
  await waitFor('the event stream to be ready', () => stream.events().some((e) => e.event === 'ready'), 10_000)

  const revoke = await cairn(['tokens', 'revoke', 'short'])
  assert.equal(revoke.code, 0, revoke.stderr)
  const revoked = Date.now()
  await waitFor('the revoked token to be refused', async () => (await status(token)) === 401, 5_000, 5)
  assert.ok(Date.now() - revoked <= 1000, `refused ${Date.now() - revoked} ms after the revocation`)
  const events = await Promise.race([stream.ended, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the stream stayed open')), 5_000))])
  assert.equal(events.at(-1)?.event, 'unauthorized')
  stream.close()

  await createUser(db, { username: 'dana', role: 'operator', password: 'correct horse battery' })
  const owned = (await createToken(db, { name: 'danas', role: 'viewer', owner: 'dana' }))!.token
  assert.equal(await status(owned), 200)
  const disable = await cairn(['users', 'disable', 'dana'])
  assert.equal(disable.code, 0, disable.stderr)
  const disabled = Date.now()
  await waitFor("the disabled user's token to be refused", async () => (await status(owned)) === 401, 5_000, 5)
  assert.ok(Date.now() - disabled <= 1000, `refused ${Date.now() - disabled} ms after disabling`)
})

test('a verified token is trusted no longer than its expiry', async () => {
  const base = await serve({ tokenCacheMs: 60_000 })
  const created = await rawRequest(base, 'POST', '/api/v1/tokens', { headers: bearer(adminToken), body: { name: 'brief', role: 'viewer', expires_in: '2s' } })
  assert.equal(created.status, 201, created.body)
  const { token, expires_at: expiresAt } = created.json()
  assert.equal((await rawRequest(base, 'GET', '/api/v1/session', { headers: bearer(token) })).status, 200)
  await waitFor('the token to expire', async () => (await rawRequest(base, 'GET', '/api/v1/session', { headers: bearer(token) })).status === 401, 15_000, 50)
  const late = Date.now() - Date.parse(expiresAt)
  assert.ok(late >= -50 && late < 1000, `refused ${late} ms after its expiry`)
})

test('a token revoked without a notification reaching the server is refused within the 2 s cache window, while a client keeps using it', async () => {
  const base = await serve()
  const token = (await createToken(db, { name: 'busy', role: 'viewer' }))!.token
  const ask = async () => (await rawRequest(base, 'GET', '/api/v1/features/spend/online?user_id=u1', { headers: bearer(token) })).status
  assert.equal(await ask(), 200)
  // Four clients ask without pause, before and after the revocation, as a busy service would.
  const answers: { started: number; status: number }[] = []
  let revokedAt: number | undefined
  const client = async () => {
    for (;;) {
      const started = Date.now()
      answers.push({ started, status: await ask() })
      if (revokedAt !== undefined && started > revokedAt + 3000) return
    }
  }
  const clients = Array.from({ length: 4 }, client)
  await waitFor('a few answers from memory', () => answers.length >= 20, 10_000, 10)
  // Revoked behind the server's back: no NOTIFY, as when its LISTEN connection missed one.
  await db.query(`UPDATE cairn.api_token SET revoked_at = now() WHERE name = 'busy'`)
  revokedAt = Date.now()
  await Promise.all(clients)
  const window = 2000
  const late = answers.filter((a) => a.started > revokedAt! + window + 5 && a.status !== 401)
  assert.deepEqual(late, [], 'every request made after the cache window was refused')
  const refused = answers.find((a) => a.started > revokedAt! && a.status === 401)
  assert.ok(refused, 'refused after the revocation')
  assert.ok(refused.started - revokedAt! <= window + 5, `first refused ${refused.started - revokedAt!} ms after the revocation`)
  assert.ok(answers.every((a) => a.status === 200 || a.status === 401), JSON.stringify(answers.filter((a) => a.status !== 200 && a.status !== 401)))
})

test('online answers served from memory are still masked with the secrets the server knows', async () => {
  await materializeAmounts([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
  const base = await serve({ secrets: { env: { CAIRN_SECRET_SHOP_KEY: 'u10' } } })
  for (let i = 0; i < 3; i++) {
    const r = await rawRequest(base, 'GET', '/api/v1/features/spend/online?user_id=u10', { headers: bearer(readerToken) })
    assert.equal(r.status, 200, r.body)
    assert.deepEqual(r.json().entity, { user_id: '***' })
    assert.equal(r.json().features.total, 11)
  }
  const plain = await serve()
  assert.deepEqual((await rawRequest(plain, 'GET', '/api/v1/features/spend/online?user_id=u10', { headers: bearer(readerToken) })).json().entity, { user_id: 'u10' })
})
