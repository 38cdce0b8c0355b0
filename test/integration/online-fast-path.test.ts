/**
 * The warm online lookup answered ahead of Fastify (engine/web/online-fast-path.ts):
 * - on its own, behind an HTTP server whose every other request gets 599: it answers only a bearer
 *   request whose token is cached, for a view and entity whose row (or absence) is cached, spelled
 *   plainly, and hands everything else on untouched (a cold token, a cold row, a revoked token,
 *   anything Fastify would decode or refuse, other methods, other paths, a closing server);
 * - the ttl rule is applied to a cached row at each answer: a row turns expired while cached;
 * - a body kept with a cached row is made again when the secrets to mask change;
 * - two full web servers, one with the fast path and one without, give the same status, headers and
 *   body for warm lookups, misses, expired rows, masked values and every malformed request.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { createDatasets } from '../../engine/data/datasets.ts'
import type { Datasets } from '../../engine/data/datasets.ts'
import { createFeatureStore } from '../../engine/data/feature-store.ts'
import type { FeatureStore } from '../../engine/data/feature-store.ts'
import { normalizeFeatureView } from '../../engine/data/feature-definition.ts'
import { createOnlineRowCache } from '../../engine/data/online-cache.ts'
import { createOnlineStore } from '../../engine/data/online-store.ts'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { saveFeatureViews } from '../../engine/store/feature-views.ts'
import { createTokenCache } from '../../engine/web/auth/token-cache.ts'
import { createToken, findTokenByHash } from '../../engine/web/auth/tokens.ts'
import { sha256Base64 } from '../../engine/web/auth/secret-ids.ts'
import { createOnlineFastPath } from '../../engine/web/online-fast-path.ts'
import { createResponseMasker } from '../../engine/web/secret-masking.ts'
import type { WebServerOptions } from '../../engine/web/server.ts'
import { seedVersion } from '../helpers/datasets.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'
import { rawRequest, startTestWeb } from '../helpers/web-client.ts'

const INTERVAL_END = new Date('2026-01-02T00:00:00Z')
const LEFT = 599

let db: Db
let dir: string
let datasets: Datasets
let store: FeatureStore
let readerToken: string
let adminToken: string
const closers: (() => Promise<void>)[] = []

const defineView = (name: string, ttl?: string) => normalizeFeatureView({
  feature_view: name, entity: ['user_id'], source: 'orders', timestamp: 'ts', online: true, ...(ttl ? { ttl } : {}),
  features: { total: { agg: 'sum', column: 'amount' }, orders: { agg: 'count' } },
})

before(async () => {
  const url = await createTestDatabase({ after: (fn) => void closers.push(fn) })
  const log = testLogger()
  db = createDb(url, { log, max: 5 })
  closers.push(() => db.close())
  await migrate(db, log)
  dir = mkdtempSync(join(tmpdir(), 'cairn-online-fast-path-'))
  closers.push(async () => rmSync(dir, { recursive: true, force: true }))
  datasets = createDatasets({ db, dir, producer: { kind: 'actor', actor: 'test' } })
  const views = [defineView('spend'), defineView('stale', '1d'), defineView('brief', '3s')]
  await db.tx((q) => saveFeatureViews(q, views.map((v, i) => ({ name: ['spend', 'stale', 'brief'][i]!, file: `${i}.yaml`, hash: v.hash, definitionJson: v.definitionJson, source: '', description: null, owner: null, tags: [] }))))
  store = createFeatureStore({ db, datasets, producer: { kind: 'actor', actor: 'test' } })
  await seedVersion(datasets, 'orders', `SELECT * FROM (VALUES ('u1', TIMESTAMPTZ '2026-01-01 10:00:00+00', 2.5::DOUBLE), ('u1', TIMESTAMPTZ '2026-01-01 11:00:00+00', 4.0::DOUBLE),
    ('u2', TIMESTAMPTZ '2026-01-01 12:00:00+00', 1.0::DOUBLE), ('secret-user', TIMESTAMPTZ '2026-01-01 12:00:00+00', 7.0::DOUBLE)) t(user_id, ts, amount)`)
  for (const view of ['spend', 'stale']) await store.materialize({ view, intervalStart: INTERVAL_END, intervalEnd: INTERVAL_END })
  readerToken = (await createToken(db, { name: 'reader', role: 'viewer' }))!.token
  adminToken = (await createToken(db, { name: 'admin', role: 'admin' }))!.token
})
after(async () => {
  for (const close of closers.reverse()) await close()
})

/** The fast path alone, over real caches and the test database; whatever it leaves gets 599. */
async function harness(masker = createResponseMasker(undefined)): Promise<{ base: string; tokens: ReturnType<typeof createTokenCache>; online: ReturnType<typeof createOnlineStore>; closing: { now: boolean } }> {
  const tokens = createTokenCache({ isLive: () => true })
  const rows = createOnlineRowCache({ isLive: () => true })
  const online = createOnlineStore(db, { rowCache: rows })
  const closing = { now: false }
  const fast = createOnlineFastPath({
    db, tokens, online, masker, log: testLogger(),
    headers: { 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' }, closing: () => closing.now,
  })
  const server: Server = createServer((request, response) => {
    if (!fast(request, response)) {
      response.writeHead(LEFT)
      response.end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tokens, online, closing }
}
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const verify = (tokens: ReturnType<typeof createTokenCache>, token: string) => {
  const key = sha256Base64(token)
  return tokens.resolve(key, () => findTokenByHash(db, Buffer.from(key, 'base64')))
}

test('the fast path answers a lookup only when the token, the definition and the row are in memory, and leaves every other request untouched', async () => {
  const { base, tokens, online, closing } = await harness()
  const path = '/api/v1/features/spend/online?user_id=u1'
  const get = (p: string, headers: Record<string, string> = bearer(readerToken), method = 'GET') => rawRequest(base, method, p, { headers })

  assert.equal((await get(path)).status, LEFT, 'a token not verified yet is left to the auth hook')
  await verify(tokens, readerToken)
  assert.equal((await get(path)).status, LEFT, 'a view and row not read yet are left to the route')
  await online.read('spend', [{ user_id: 'u1' }, { user_id: 'u9' }])

  const answered = await get(path)
  assert.equal(answered.status, 200)
  assert.deepEqual(answered.json(), { entity: { user_id: 'u1' }, features: { total: 6.5, orders: 2 }, feature_timestamp: INTERVAL_END.toISOString(), found: true, expired: false })
  assert.equal(answered.headers['content-type'], 'application/json; charset=utf-8')
  assert.equal(answered.headers['x-content-type-options'], 'nosniff')
  assert.equal(answered.headers['cache-control'], 'no-store')
  assert.equal(answered.headers['content-length'], String(Buffer.byteLength(answered.body)))
  const absent = await get('/api/v1/features/spend/online?user_id=u9')
  assert.equal(absent.status, 200, 'a cached absence is answered too')
  assert.deepEqual(absent.json(), { entity: { user_id: 'u9' }, features: { total: null, orders: null }, feature_timestamp: null, found: false, expired: false })

  const left: [string, string, Record<string, string>?][] = [
    ['POST', path], ['HEAD', path], ['DELETE', path],
    ['GET', '/api/v1/features/spend/online?user_id=u2'], // a row not cached
    ['GET', '/api/v1/features/other/online?user_id=u1'], // a view not read
    ['GET', '/api/v1/features/spend/online'], ['GET', '/api/v1/features/spend/online?'],
    ['GET', '/api/v1/features/spend/online?user_id=%75%31'], ['GET', '/api/v1/features/spend/online?user_id=u+1'],
    ['GET', '/api/v1/features/spend/online?user_id=u1&user_id=u1'], ['GET', '/api/v1/features/spend/online?user_id'],
    ['GET', '/api/v1/features/spend/online?user_id=u1&'], ['GET', '/api/v1/features/spend/online?&user_id=u1'], ['GET', '/api/v1/features/spend/online?=u1'],
    ['GET', '/api/v1/features/spend/online?user_id=u1&extra=1'], ['GET', '/api/v1/features/spend/online?shop=1'],
    ['GET', `/api/v1/features/spend/online?user_id=${'x'.repeat(1001)}`],
    ['GET', '/api/v1/features/spend/online/?user_id=u1'], ['GET', '/api/v1/features/Spend/online?user_id=u1'], ['GET', '/api/v1/Features/spend/online?user_id=u1'],
    ['GET', '/api/v1/features/sp%65nd/online?user_id=u1'], ['GET', '/api/v1/features//online?user_id=u1'], ['GET', '/api/v1/features/a/b/online?user_id=u1'],
    ['GET', `/api/v1/features/${'v'.repeat(65)}/online?user_id=u1`], ['GET', '//api/v1/features/spend/online?user_id=u1'],
    ['GET', path, {}], ['GET', path, { authorization: 'Bearer' }], ['GET', path, { authorization: `Basic ${readerToken}` }],
    ['GET', path, { authorization: 'Bearer cairn_not-a-token' }], ['GET', path, { cookie: `cairn_session=${readerToken}` }],
    ['GET', path, bearer(adminToken)], // a token that is valid but not verified by this process yet
  ]
  for (const [method, p, headers] of left) assert.equal((await get(p, headers ?? bearer(readerToken), method)).status, LEFT, `${method} ${p.slice(0, 80)} ${JSON.stringify(headers ?? {})}`)

  // A credential change empties the token cache: the next request is checked by the hook again.
  tokens.clear()
  assert.equal((await get(path)).status, LEFT)
  await verify(tokens, readerToken)
  assert.equal((await get(path)).status, 200)
  closing.now = true
  assert.equal((await get(path)).status, LEFT, 'a closing server answers through Fastify (503)')
})

test('a cached row turns expired at its ttl: the fast path applies the rule at every answer', async () => {
  const { base, tokens, online } = await harness()
  await verify(tokens, readerToken)
  // A row materialized for an interval ending now, in a view whose ttl is 3 s.
  const end = new Date(Math.floor(Date.now() / 1000) * 1000)
  await seedVersion(datasets, 'orders', `SELECT 'u3' AS user_id, TIMESTAMPTZ '${new Date(end.getTime() - 60_000).toISOString()}' AS ts, 5.0::DOUBLE AS amount`)
  await store.materialize({ view: 'brief', intervalStart: end, intervalEnd: end })
  const first = await online.read('brief', [{ user_id: 'u3' }])
  assert.ok(first.ok)
  const expiresAt = end.getTime() + 3000
  const seen: { started: number; ended: number; expired: boolean; total: unknown }[] = []
  for (;;) {
    const started = Date.now()
    const r = await rawRequest(base, 'GET', '/api/v1/features/brief/online?user_id=u3', { headers: bearer(readerToken) })
    const ended = Date.now()
    assert.equal(r.status, 200, 'answered from memory')
    const body = r.json()
    seen.push({ started, ended, expired: body.expired, total: body.features.total })
    if (body.expired) break
    assert.ok(ended < expiresAt + 5000, 'the row never expired')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  for (const s of seen) {
    // Not expired: the server's clock was at most ttl past the feature timestamp when it answered.
    if (!s.expired) assert.ok(s.started <= expiresAt && s.total === 5, JSON.stringify(s))
    // Expired: past the ttl, and its features are null.
    else assert.ok(s.ended > expiresAt && s.total === null, JSON.stringify(s))
  }
  assert.ok(seen.some((s) => !s.expired), 'a fresh answer came from memory before the ttl passed')
})

test('a body kept with a cached row is made again when the secrets change, and the masker stays the same object while they do not', async () => {
  const secrets = join(dir, 'secrets')
  mkdirSync(secrets, { recursive: true })
  const masker = createResponseMasker({ dir: secrets }, 0)
  assert.equal(masker(), masker(), 'unchanged secrets: the same masker')
  const { base, tokens, online } = await harness(masker)
  await verify(tokens, readerToken)
  await online.read('spend', [{ user_id: 'secret-user' }])
  const path = '/api/v1/features/spend/online?user_id=secret-user'
  const ask = async () => {
    const r = await rawRequest(base, 'GET', path, { headers: bearer(readerToken) })
    assert.equal(r.status, 200, 'answered from memory')
    return r.json().entity.user_id as string
  }
  assert.equal(await ask(), 'secret-user')
  assert.equal(await ask(), 'secret-user', 'the kept body')
  const before = masker()
  writeFileSync(join(secrets, 'USER'), 'secret-user')
  assert.notEqual(masker(), before, 'a new secret: a new masker')
  assert.equal(await ask(), '***', 'the body kept for the old masker is not reused')
  rmSync(join(secrets, 'USER'))
  assert.equal(await ask(), 'secret-user')
})

test('with and without the fast path, the server gives the same status, headers and body', async () => {
  const serve = async (options: Partial<WebServerOptions>) => {
    const { app, base } = await startTestWeb({ db, log: testLogger(), secrets: { env: { CAIRN_SECRET_USER: 'secret-user' } }, ...options })
    closers.push(() => (app as FastifyInstance).close())
    return base
  }
  const [fast, slow] = [await serve({}), await serve({ onlineFastPath: false })]
  const requests: [string, Record<string, string>][] = [
    ['/api/v1/features/spend/online?user_id=u1', bearer(readerToken)],
    ['/api/v1/features/spend/online?user_id=u9', bearer(readerToken)],
    ['/api/v1/features/stale/online?user_id=u1', bearer(readerToken)],
    ['/api/v1/features/spend/online?user_id=secret-user', bearer(adminToken)],
    ['/api/v1/features/spend/online?user_id=%75%32', bearer(readerToken)],
    ['/api/v1/features/spend/online?user_id=u1&user_id=u2', bearer(readerToken)],
    ['/api/v1/features/spend/online?user_id=u1&extra=1', bearer(readerToken)],
    ['/api/v1/features/spend/online?other=u1', bearer(readerToken)],
    ['/api/v1/features/nope/online?user_id=u1', bearer(readerToken)],
    ['/api/v1/features/spend/online/?user_id=u1', bearer(readerToken)],
    ['/api/v1/features/spend/online?user_id=u1', {}],
    ['/api/v1/features/spend/online?user_id=u1', bearer('cairn_wrong')],
  ]
  const normalize = (r: Awaited<ReturnType<typeof rawRequest>>) => {
    const { date: _date, ...headers } = r.headers
    return { status: r.status, headers, body: r.body }
  }
  let ok = 0
  for (const [path, headers] of requests) {
    for (let round = 0; round < 2; round++) {
      // The second round is answered from the caches the first one filled.
      const [a, b] = [await rawRequest(fast, 'GET', path, { headers }), await rawRequest(slow, 'GET', path, { headers })]
      assert.deepEqual(normalize(a), normalize(b), `${path} ${JSON.stringify(headers)} round ${round + 1}`)
      if (a.status === 200) ok++
    }
  }
  assert.equal(ok, 10, 'five lookups answered twice')
  const masked = await rawRequest(fast, 'GET', '/api/v1/features/spend/online?user_id=secret-user', { headers: bearer(readerToken) })
  assert.deepEqual(masked.json().entity, { user_id: '***' })
  assert.equal(masked.json().features.total, 7)
  const expired = await rawRequest(fast, 'GET', '/api/v1/features/stale/online?user_id=u1', { headers: bearer(readerToken) })
  assert.deepEqual([expired.json().expired, expired.json().features], [true, { total: null, orders: null }])
})
