/**
 * The model server against a client written from the Open Inference Protocol's text (plain fetch),
 * on ONNX models built outside cairn's trainer and registered through the registry: metadata from
 * the graph, FP32/FP64/INT32/INT64/BOOL tensors with expected outputs computed here, every kind of
 * bad request answered with a 4xx and a clear message while the server keeps answering, tokens,
 * the traffic split (shares, sticky route keys), a broken canary's errors in the serving figures,
 * and per-version Prometheus metrics.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Db } from '../../engine/store/db.ts'
import type { Models } from '../../engine/models/registry.ts'
import { revokeToken } from '../../engine/web/auth/tokens.ts'
import { createServeServer } from '../../engine/serve/serve-server.ts'
import type { ServeServerOptions } from '../../engine/serve/serve-server.ts'
import { readServingWindow } from '../../engine/serve/serving-stats.ts'
import { startTestRegistry } from '../helpers/model-registry.ts'
import { sigmoidModel, sigmoidReference, typedModel } from '../helpers/onnx-models.ts'
import { OipClient, output } from '../helpers/oip-client.ts'
import { writeOnlineRows } from '../../engine/store/feature-online.ts'
import { canonicalEntityKey } from '../../engine/data/entity-key.ts'
import { waitFor } from '../helpers/engine-extra.ts'

const W1 = [0.5, -1, 2]
const B1 = 0.1
const W2 = [-0.25, 0.75, 0.5]
const B2 = -0.2
const ACTOR = { user: 'test' }

interface Setup {
  db: Db
  dir: string
  models: Models
  token: string
  start(options?: Partial<ServeServerOptions>): Promise<{ client: OipClient; url: string; close(): Promise<void> }>
}

async function setup(t: test.TestContext): Promise<Setup> {
  const { db, log, dir, models, token } = await startTestRegistry(t, 'cairn-serve-')
  return {
    db,
    dir,
    models,
    token,
    async start(options = {}) {
      const server = await createServeServer({ db, log, dataDir: dir, flushMs: 50, ...options })
      await server.app.listen({ port: 0, host: '127.0.0.1' })
      const address = server.app.server.address() as { port: number }
      const url = `http://127.0.0.1:${address.port}`
      let closed = false
      const close = async () => {
        if (!closed) await server.close()
        closed = true
      }
      t.after(close)
      return { client: new OipClient(url, token), url, close }
    },
  }
}

async function register(s: Setup, name: string, bytes: Uint8Array, features?: string[]): Promise<number> {
  const file = join(s.dir, `${name}-${Date.now()}-${Math.random()}.onnx`)
  writeFileSync(file, bytes)
  return (await s.models.register({ name, file, ...(features ? { features } : {}) })).version.version
}

const until = <T>(what: string, check: () => Promise<T | undefined | false>, ms = 10_000) => waitFor(what, check, ms, 20)

const close = (a: readonly unknown[], b: readonly number[], tolerance = 1e-6) => a.length === b.length && a.every((x, i) => Math.abs((x as number) - b[i]!) <= tolerance)

test('Open Inference Protocol: health, metadata from the graph, inference on every datatype', async (t) => {
  const s = await setup(t)
  const v1 = await register(s, 'churn', sigmoidModel(W1, B1))
  const v2 = await register(s, 'churn', sigmoidModel(W2, B2))
  await s.models.setStage('churn', v1, 'production', ACTOR)
  const typed = await register(s, 'typed', typedModel())
  await s.models.setStage('typed', typed, 'production', ACTOR)
  const { client } = await s.start()

  assert.equal((await client.get('/v2/health/live')).status, 200)
  assert.equal((await client.get('/v2/health/ready')).status, 200)
  const server = await client.get('/v2')
  assert.equal(server.body.name, 'cairn')
  assert.ok(Array.isArray(server.body.extensions))

  const meta = await client.get('/v2/models/churn')
  assert.equal(meta.status, 200)
  assert.deepEqual(meta.body, {
    name: 'churn',
    versions: ['1'],
    platform: 'onnxruntime',
    inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }],
    outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }],
  })
  assert.equal((await client.get('/v2/models/churn/ready')).status, 200)
  const typedMeta = await client.get('/v2/models/typed')
  assert.deepEqual(typedMeta.body.inputs, [
    { name: 'ids', datatype: 'INT64', shape: [-1, 2] },
    { name: 'values', datatype: 'FP64', shape: [-1, 3] },
    { name: 'flags', datatype: 'BOOL', shape: [-1] },
    { name: 'counts', datatype: 'INT32', shape: [-1] },
  ])

  // FP32, three rows, flat row-major; the id comes back.
  const x = [1, 2, 3, -1, 0.5, 0.25, 0, 0, 0]
  const answer = await client.infer('churn', { id: 'req-7', inputs: [{ name: 'x', shape: [3, 3], datatype: 'FP32', data: x }] })
  assert.equal(answer.status, 200, JSON.stringify(answer.body))
  assert.equal(answer.body.model_name, 'churn')
  assert.equal(answer.body.model_version, '1')
  assert.equal(answer.body.id, 'req-7')
  const y = output(answer, 'y')
  assert.deepEqual([y.shape, y.datatype], [[3, 1], 'FP32'])
  assert.ok(close(y.data, sigmoidReference(x, W1, B1)), `${y.data} vs ${sigmoidReference(x, W1, B1)}`)
  // Nested data is the same tensor.
  const nested = await client.infer('churn', { inputs: [{ name: 'x', shape: [3, 3], datatype: 'FP32', data: [[1, 2, 3], [-1, 0.5, 0.25], [0, 0, 0]] }] })
  assert.deepEqual(output(nested, 'y').data, y.data)

  // A version by number, outside the split (a candidate): loaded on demand.
  const byVersion = await client.infer('churn', { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] }, { version: v2 })
  assert.equal(byVersion.status, 200, JSON.stringify(byVersion.body))
  assert.equal(byVersion.body.model_version, String(v2))
  assert.ok(close(output(byVersion, 'y').data, sigmoidReference([1, 2, 3], W2, B2)))
  const v2meta = await client.get(`/v2/models/churn/versions/${v2}`)
  assert.deepEqual([v2meta.status, v2meta.body.versions], [200, [String(v2)]])
  assert.equal((await client.get(`/v2/models/churn/versions/${v2}/ready`)).status, 200)

  // INT64, FP64, BOOL, INT32; only the outputs asked for.
  const typedAnswer = await client.infer('typed', {
    inputs: [
      { name: 'ids', shape: [2, 2], datatype: 'INT64', data: [1, 2, 9007199254740990, -5] },
      { name: 'values', shape: [2, 3], datatype: 'FP64', data: [0.1, 0.2, 0.3, 1e300, -2.5, 0] },
      { name: 'flags', shape: [2], datatype: 'BOOL', data: [true, false] },
      { name: 'counts', shape: [2], datatype: 'INT32', data: [2147483647, -2147483648] },
    ],
  })
  assert.equal(typedAnswer.status, 200, JSON.stringify(typedAnswer.body))
  assert.deepEqual(output(typedAnswer, 'ids_plus'), { name: 'ids_plus', shape: [2, 2], datatype: 'INT64', data: [2, 3, 9007199254740991, -4] })
  assert.deepEqual(output(typedAnswer, 'doubled'), { name: 'doubled', shape: [2, 3], datatype: 'FP64', data: [0.2, 0.4, 0.6, 2e300, -5, 0] })
  assert.deepEqual(output(typedAnswer, 'negated'), { name: 'negated', shape: [2], datatype: 'BOOL', data: [false, true] })
  assert.deepEqual(output(typedAnswer, 'counts_out'), { name: 'counts_out', shape: [2], datatype: 'INT32', data: [2147483647, -2147483648] })
  const some = await client.infer('typed', {
    inputs: [
      { name: 'ids', shape: [1, 2], datatype: 'INT64', data: [1, 2] },
      { name: 'values', shape: [1, 3], datatype: 'FP64', data: [1, 2, 3] },
      { name: 'flags', shape: [1], datatype: 'BOOL', data: [true] },
      { name: 'counts', shape: [1], datatype: 'INT32', data: [4] },
    ],
    outputs: [{ name: 'negated' }],
  })
  assert.deepEqual((some.body.outputs as { name: string }[]).map((o) => o.name), ['negated'])
})

test('bad requests get a 4xx with a clear message, and the server keeps answering', async (t) => {
  const s = await setup(t)
  const v1 = await register(s, 'churn', sigmoidModel(W1, B1))
  await s.models.setStage('churn', v1, 'production', ACTOR)
  await register(s, 'nothing_served', sigmoidModel(W1, B1))
  const { client, url } = await s.start({ bodyLimit: 64 * 1024 })
  const good = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] }
  const tensor = (over: Record<string, unknown>) => JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3], ...over }] })
  const cases: { what: string; send: () => Promise<{ status: number; body: Record<string, unknown> }>; status: number; message: RegExp }[] = [
    { what: 'unknown model', send: () => client.infer('nope', good), status: 404, message: /no model named "nope"/ },
    { what: 'model without production', send: () => client.infer('nothing_served', good), status: 404, message: /no production or canary version/ },
    { what: 'unknown version', send: () => client.infer('churn', good, { version: 9 }), status: 404, message: /model churn has no version 9/ },
    { what: 'version not a number', send: () => client.infer('churn', good, { version: 'latest' }), status: 400, message: /not a version number/ },
    { what: 'wrong tensor name', send: () => client.postRaw('/v2/models/churn/infer', tensor({ name: 'features' })), status: 400, message: /no input "features"; its inputs are "x"/ },
    { what: 'wrong rank', send: () => client.postRaw('/v2/models/churn/infer', tensor({ shape: [3], data: [1, 2, 3] })), status: 400, message: /shape \[3\] has 1 dimensions; the model's is \[-1, 3\]/ },
    { what: 'wrong dimension', send: () => client.postRaw('/v2/models/churn/infer', tensor({ shape: [1, 4], data: [1, 2, 3, 4] })), status: 400, message: /dimension 1 must be 3/ },
    { what: 'wrong datatype', send: () => client.postRaw('/v2/models/churn/infer', tensor({ datatype: 'FP64' })), status: 400, message: /datatype FP64 does not match the model's FP32/ },
    { what: 'unknown datatype', send: () => client.postRaw('/v2/models/churn/infer', tensor({ datatype: 'FLOAT' })), status: 400, message: /datatype "FLOAT" is not one of/ },
    { what: 'empty tensor', send: () => client.postRaw('/v2/models/churn/infer', tensor({ shape: [0, 3], data: [] })), status: 400, message: /holds no elements/ },
    { what: 'data length', send: () => client.postRaw('/v2/models/churn/infer', tensor({ shape: [2, 3] })), status: 400, message: /"data" has 3 elements; shape \[2, 3\] needs 6/ },
    { what: 'element type', send: () => client.postRaw('/v2/models/churn/infer', tensor({ data: [1, 'two', 3] })), status: 400, message: /data\[1\] = "two" is not a finite number/ },
    { what: 'missing input', send: () => client.postRaw('/v2/models/churn/infer', JSON.stringify({ inputs: [] })), status: 400, message: /"inputs" must be a non-empty array/ },
    { what: 'not JSON, sent as text', send: () => client.postRaw('/v2/models/churn/infer', 'x=1', { 'content-type': 'text/plain' }), status: 400, message: /not valid JSON/ },
    { what: 'not JSON', send: () => client.postRaw('/v2/models/churn/infer', '{"inputs": ['), status: 400, message: /not valid JSON/ },
    { what: 'huge body', send: () => client.postRaw('/v2/models/churn/infer', tensor({ shape: [30000, 3], data: new Array(90000).fill(1.5) })), status: 413, message: /larger than this server's limit of 65536 bytes/ },
    { what: 'no token', send: () => new OipClient(url).infer('churn', good), status: 401, message: /needs an API token/ },
    { what: 'bad token', send: () => new OipClient(url, 'cairn_nonsense').infer('churn', good), status: 401, message: /not valid/ },
    { what: 'metadata without token', send: () => new OipClient(url).get('/v2/models/churn'), status: 401, message: /needs an API token/ },
  ]
  for (const c of cases) {
    const answer = await c.send()
    assert.equal(answer.status, c.status, `${c.what}: ${JSON.stringify(answer.body)}`)
    assert.equal(typeof answer.body.error, 'string', c.what)
    assert.match(answer.body.error as string, c.message, c.what)
    const after = await client.infer('churn', good)
    assert.equal(after.status, 200, `after ${c.what}`)
  }
  // Health stays open; a revoked token is refused at once.
  assert.equal((await new OipClient(url).get('/v2/health/ready')).status, 200)
  await revokeToken(s.db, 'client')
  await until('the revoked token refused', async () => (await client.infer('churn', good)).status === 401)
  // The client's mistakes say nothing about the version.
  const figures = await until('figures', async () => {
    const w = await readServingWindow(s.db, 'churn', v1, new Date(Date.now() - 60_000))
    return w.requests >= cases.length && w
  })
  assert.equal(figures.errors, 0)
})

test('serve: { auth: none } needs no token', async (t) => {
  const s = await setup(t)
  const v1 = await register(s, 'churn', sigmoidModel(W1, B1))
  await s.models.setStage('churn', v1, 'production', ACTOR)
  const { url } = await s.start({ auth: 'none' })
  const answer = await new OipClient(url).infer('churn', { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] })
  assert.equal(answer.status, 200)
})

test('traffic split: shares, sticky route keys, a broken canary counted as failing, per-version metrics', async (t) => {
  const s = await setup(t)
  const v1 = await register(s, 'churn', sigmoidModel(W1, B1))
  const v2 = await register(s, 'churn', sigmoidModel(W2, B2))
  // Version 3 takes 4 features: production's requests do not fit it.
  const v3 = await register(s, 'churn', sigmoidModel([1, 1, 1, 1], 0))
  await s.models.setStage('churn', v1, 'production', ACTOR)
  const { client, url } = await s.start()
  const x = [0.3, -0.7, 1.1]
  const expected = new Map([[v1, sigmoidReference(x, W1, B1)[0]!], [v2, sigmoidReference(x, W2, B2)[0]!]])
  const request = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: x }] }

  await s.models.setStage('churn', v2, 'canary', ACTOR, 0.3)
  await until('the canary served', async () => ((await client.get('/v2/models/churn')).body.versions as string[]).includes(String(v2)))
  const counts = new Map<number, number>()
  for (let i = 0; i < 300; i++) {
    const a = await client.infer('churn', request)
    assert.equal(a.status, 200)
    const version = Number(a.body.model_version)
    assert.equal(a.headers.get('x-cairn-model-version'), String(version))
    // The answer is the computation of the version it names.
    assert.ok(Math.abs((output(a, 'y').data[0] as number) - expected.get(version)!) < 1e-6)
    counts.set(version, (counts.get(version) ?? 0) + 1)
  }
  assert.ok(counts.get(v2)! > 50 && counts.get(v2)! < 130, `canary got ${counts.get(v2)} of 300 at 30 %`)
  // Sticky: a key always lands on the same version.
  for (const key of ['alice', 'bob', 'carol', 'dave']) {
    const seen = new Set<string>()
    for (let i = 0; i < 10; i++) seen.add((await client.infer('churn', request, { routeKey: key })).body.model_version as string)
    assert.equal(seen.size, 1, `${key} went to ${[...seen]}`)
  }

  // A canary that cannot take production's requests: they fail (5xx) and count as its errors.
  const stepStart = new Date()
  await s.models.setStage('churn', v2, 'archived', ACTOR, 0)
  await s.models.setStage('churn', v3, 'canary', ACTOR, 0.5)
  await until('the broken canary served', async () => ((await client.get('/v2/models/churn')).body.versions as string[]).includes(String(v3)))
  let failed = 0
  for (let i = 0; i < 100; i++) {
    const a = await client.infer('churn', request)
    if (a.status === 200) assert.equal(a.body.model_version, String(v1))
    else {
      failed++
      assert.equal(a.status, 500)
      assert.equal(a.body.model_version, String(v3))
      assert.match(a.body.error as string, /cannot take this request, which production version 1 takes/)
    }
  }
  assert.ok(failed > 20 && failed < 80, `${failed} failed`)
  const canary = await until('the canary figures', async () => {
    const w = await readServingWindow(s.db, 'churn', v3, stepStart)
    return w.requests === failed && w
  })
  assert.deepEqual([canary.errors, canary.errorRate], [failed, 1])
  const production = await readServingWindow(s.db, 'churn', v1, stepStart)
  // (the window may take in up to a second before stepStart: buckets overlapping it count)
  assert.ok(production.requests >= 100 - failed, `${production.requests}`)
  assert.equal(production.errors, 0)
  assert.ok(production.p99Ms !== null && production.p99Ms > 0 && production.p99Ms < 1000)

  const metrics = await (await fetch(`${url}/metrics`)).text()
  assert.match(metrics, new RegExp(`cairn_serve_requests_total\\{model="churn",version="${v1}",code="200"\\} \\d+`))
  assert.match(metrics, new RegExp(`cairn_serve_errors_total\\{model="churn",version="${v3}"\\} ${failed}`))
  assert.match(metrics, new RegExp(`cairn_serve_request_duration_seconds_bucket\\{le="0.01",model="churn",version="${v1}"\\} \\d+`))
  assert.match(metrics, new RegExp(`cairn_serve_traffic_share\\{model="churn",version="${v3}"\\} 0.5`))
})

test('feature enrichment: entities instead of inputs, read from the online store in the recorded feature order', async (t) => {
  const s = await setup(t)
  await s.db.query(`INSERT INTO cairn.feature_view (name, file, current_version) VALUES ('activity', 'dags/features/activity.yaml', 1)`)
  const definition = { entity: ['user_id'], features: [{ name: 'spend_7d' }, { name: 'events_1d' }, { name: 'active' }], ttl_ms: null }
  await s.db.query(`INSERT INTO cairn.feature_view_definition (view, version, hash, definition, source) VALUES ('activity', 1, 'h', $1::jsonb, '')`, [JSON.stringify(definition)])
  const rows = [
    { user: 'u1', features: { spend_7d: 1.5, events_1d: 3, active: true } },
    { user: 'u2', features: { spend_7d: -0.5, events_1d: null, active: false } },
  ]
  await writeOnlineRows(s.db, 'activity', 1, new Date(), rows.map((r) => ({ key: canonicalEntityKey([r.user])!, entity: { user_id: r.user }, features: r.features })))
  // The model's columns in another order than the view's, as a training set may have them.
  const v1 = await register(s, 'churn', sigmoidModel(W1, B1), ['activity__events_1d', 'activity__spend_7d', 'activity__active'])
  await s.models.setStage('churn', v1, 'production', ACTOR)
  const { client } = await s.start()

  const answer = await client.postRaw('/v2/models/churn/infer', JSON.stringify({ id: 'e1', parameters: { entities: [{ user_id: 'u1' }, { user_id: 'u2' }, { user_id: 'nobody' }] } }))
  assert.equal(answer.status, 200, JSON.stringify(answer.body))
  assert.equal(answer.body.id, 'e1')
  // Nulls and unknown entities become 0, booleans 1 or 0.
  const expected = sigmoidReference([3, 1.5, 1, 0, -0.5, 0, 0, 0, 0], W1, B1)
  assert.ok(close(output(answer, 'y').data, expected), `${output(answer, 'y').data} vs ${expected}`)

  const both = await client.postRaw('/v2/models/churn/infer', JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }], parameters: { entities: [{ user_id: 'u1' }] } }))
  assert.deepEqual([both.status, both.body.error], [400, 'send either "inputs" or "parameters": {"entities"}, not both'])
  const badEntity = await client.postRaw('/v2/models/churn/infer', JSON.stringify({ parameters: { entities: [{ customer: 'u1' }] } }))
  assert.equal(badEntity.status, 400)
  assert.match(badEntity.body.error as string, /lacks user_id/)
  // A version without a recorded feature list cannot be fed from the store.
  const v2 = await register(s, 'churn', sigmoidModel(W2, B2))
  const none = await client.postRaw(`/v2/models/churn/versions/${v2}/infer`, JSON.stringify({ parameters: { entities: [{ user_id: 'u1' }] } }))
  assert.equal(none.status, 400)
  assert.match(none.body.error as string, /no recorded feature list/)
})
