/**
 * The ingest operator's remote sources: a real HTTP server on 127.0.0.1 (secret header, a 500
 * then success, a timeout, an oversized body, a 404) and a real second Postgres database (types
 * from the result, a SQL error, a connection terminated mid-stream). None of the failures
 * publishes anything; credentials never reach the log or the version's details.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import { ingestHarness } from '../helpers/ingest.ts'
import type { IngestHarness } from '../helpers/ingest.ts'
import { createTestDatabase } from '../helpers/postgres.ts'
import { waitFor } from '../helpers/engine-extra.ts'

function failed(result: { ok: boolean }): asserts result is { ok: false; kind: string; retryable: boolean; message: string } {
  assert.equal(result.ok, false, `expected a failure, got ${JSON.stringify(result)}`)
}

async function versionCount(h: IngestHarness): Promise<number> {
  const { rows } = await h.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM cairn.dataset_version`)
  return Number(rows[0]!.n)
}

test('http: header secrets, a 500 then success, a timeout, an oversized body, a 404', async (t) => {
  const hits = new Map<string, number>()
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const n = (hits.get(path) ?? 0) + 1
    hits.set(path, n)
    if (path === '/secret.csv') {
      if (req.headers.authorization !== 'Bearer s3cret-token') return void res.writeHead(401).end()
      return void res.writeHead(200, { 'content-type': 'text/csv' }).end('id,name\n1,a\n2,b\n')
    }
    if (path === '/basic.jsonl') {
      if (req.headers.authorization !== `Basic ${Buffer.from('alice:pw-in-url').toString('base64')}`) return void res.writeHead(401).end()
      return void res.writeHead(200).end('{"id": 1}\n{"id": 2}\n')
    }
    if (path === '/flaky.csv') return n === 1 ? void res.writeHead(500).end('boom') : void res.writeHead(200).end('id\n1\n')
    if (path === '/down.csv') return void res.writeHead(503).end()
    if (path === '/slow.csv') return void setTimeout(() => res.writeHead(200).end('id\n1\n'), 5000).unref()
    if (path === '/big.csv') {
      // No content-length: the limit must hold while streaming.
      res.writeHead(200)
      res.write('id\n')
      for (let i = 0; i < 200; i++) res.write(`${'9'.repeat(1000)}\n`)
      return void res.end()
    }
    if (path === '/announced.csv') return void res.writeHead(200, { 'content-length': '100000' }).end('x'.repeat(100000))
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const h = await ingestHarness(t)

  const ok = await h.run({ source: { kind: 'http', url: `${base}/secret.csv?token=in-query`, format: 'csv', headers: { Authorization: 'Bearer s3cret-token' } }, dataset: 'remote' })
  assert.deepEqual(ok.result, { ok: true, outputs: { dataset: 'remote', version: 1, rows: 2 } })
  const details = JSON.stringify((await h.datasets.get('remote'))!.details)
  assert.match(details, new RegExp(`"url":"${base}/secret.csv"`))
  for (const secret of ['s3cret-token', 'in-query']) {
    assert.doesNotMatch(details + ok.log.join('\n'), new RegExp(secret))
  }

  const basic = await h.run({ source: { kind: 'http', url: base.replace('http://', 'http://alice:pw-in-url@') + '/basic.jsonl', format: 'jsonl' }, dataset: 'basic' })
  assert.deepEqual(basic.result, { ok: true, outputs: { dataset: 'basic', version: 1, rows: 2 } })
  assert.doesNotMatch(JSON.stringify((await h.datasets.get('basic'))!.details) + basic.log.join('\n'), /alice|pw-in-url/)

  const flaky = await h.run({ source: { kind: 'http', url: `${base}/flaky.csv`, format: 'csv' }, dataset: 'flaky' })
  assert.deepEqual(flaky.result, { ok: true, outputs: { dataset: 'flaky', version: 1, rows: 1 } })
  assert.equal(hits.get('/flaky.csv'), 2)
  assert.match(flaky.log.join('\n'), /HTTP 500 Internal Server Error; trying again/)

  const down = await h.run({ source: { kind: 'http', url: `${base}/down.csv`, format: 'csv', retries: 1 }, dataset: 'down' })
  failed(down.result)
  assert.equal(down.result.kind, 'infrastructure')
  assert.equal(down.result.retryable, true)
  assert.match(down.result.message, /HTTP 503 Service Unavailable \(gave up after 2 tries\)/)

  const slow = await h.run({ source: { kind: 'http', url: `${base}/slow.csv`, format: 'csv', timeout: '300ms', retries: 1 }, dataset: 'slow' })
  failed(slow.result)
  assert.equal(slow.result.kind, 'infrastructure')
  assert.equal(slow.result.retryable, true)
  assert.match(slow.result.message, /no complete answer within 300ms \(gave up after 2 tries\)/)

  for (const path of ['/big.csv', '/announced.csv']) {
    const big = await h.run({ source: { kind: 'http', url: `${base}${path}`, format: 'csv', max_bytes: 50_000 }, dataset: 'big' })
    failed(big.result)
    assert.equal(big.result.kind, 'data_invalid', path)
    assert.equal(big.result.retryable, false)
    assert.match(big.result.message, /larger than max_bytes \(50000 bytes/)
  }

  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const closedPort = (closed.address() as AddressInfo).port
  await new Promise<void>((resolve) => closed.close(() => resolve()))
  const refused = await h.run({ source: { kind: 'http', url: `http://127.0.0.1:${closedPort}/x.csv`, format: 'csv', retries: 1 }, dataset: 'refused' })
  failed(refused.result)
  assert.equal(refused.result.kind, 'infrastructure')
  assert.equal(refused.result.retryable, true)
  assert.match(refused.result.message, /connection failed \(ECONNREFUSED\) \(gave up after 2 tries\)/)

  const missing = await h.run({ source: { kind: 'http', url: `${base}/nope.csv`, format: 'csv' }, dataset: 'nope' })
  failed(missing.result)
  assert.equal(missing.result.retryable, false)
  assert.match(missing.result.message, /answered HTTP 404/)
  assert.equal(await versionCount(h), 3)
})

test('postgres: types from the result, SQL errors, and a connection terminated mid-stream publishes nothing', async (t) => {
  const sourceUrl = await createTestDatabase(t)
  const source = new pg.Client({ connectionString: sourceUrl })
  await source.connect()
  // The database is dropped (its connections terminated) by the cleanup that runs first.
  source.on('error', () => undefined)
  t.after(() => source.end())
  await source.query(`CREATE TABLE events (id bigint, user_id text, ts timestamptz, naive timestamp, amount numeric(10,2), ok boolean, day date, tags text[])`)
  await source.query(`INSERT INTO events VALUES (1, 'u1', '2026-01-01 01:00:00+01', '2026-01-01 00:00:00', 1.25, true, '2026-01-01', '{a,b}'), (2, NULL, NULL, NULL, NULL, false, NULL, NULL)`)
  const h = await ingestHarness(t, { connections: { warehouse: { kind: 'postgres', url_env: 'WAREHOUSE_URL' } } }, { WAREHOUSE_URL: sourceUrl })

  const ok = await h.run({ source: { kind: 'postgres', connection: 'warehouse', query: 'select * from events order by id' }, dataset: 'pg_events', columns: { user_id: { type: 'string' } }, on_bad_rows: 'fail' })
  assert.deepEqual(ok.result, { ok: true, outputs: { dataset: 'pg_events', version: 1, rows: 2 } })
  const version = (await h.datasets.get('pg_events'))!
  assert.deepEqual(version.columns.map((c) => `${c.name}:${c.type}`), ['id:integer', 'user_id:string', 'ts:timestamp', 'naive:timestamp', 'amount:number', 'ok:boolean', 'day:date', 'tags:string'])
  assert.deepEqual(version.details.source, { kind: 'postgres', connection: 'warehouse', query: 'select * from events order by id' })

  const notNull = await h.run({ source: { kind: 'postgres', connection: 'warehouse', query: 'select * from events order by id' }, dataset: 'pg_events', columns: { user_id: { type: 'string', nullable: false } } })
  failed(notNull.result)
  assert.match(notNull.result.message, /query on connection warehouse row 2: column user_id is empty but declared nullable: false/)

  const syntax = await h.run({ source: { kind: 'postgres', connection: 'warehouse', query: 'selec nothing' }, dataset: 'x' })
  failed(syntax.result)
  assert.equal(syntax.result.kind, 'invalid_params')
  assert.match(syntax.result.message, /SQLSTATE 42601/)
  const unknown = await h.run({ source: { kind: 'postgres', connection: 'nope', query: 'select 1' }, dataset: 'x' })
  failed(unknown.result)
  assert.match(unknown.result.message, /connection "nope" is not defined in cairn.yaml/)

  // A long query streamed in small batches; its backend is terminated from another connection.
  const marker = `ingest_drop_${Date.now()}`
  const killer = (async () => {
    const pid = await waitFor('the streaming backend', async () => {
      const { rows } = await source.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()`, [`%${marker}%`])
      return rows[0]?.pid
    }, 60_000)
    // Let some batches through first.
    await new Promise((r) => setTimeout(r, 300))
    await source.query(`SELECT pg_terminate_backend($1)`, [pid])
  })()
  const dropped = await h.run({ source: { kind: 'postgres', connection: 'warehouse', query: `select i, md5(i::text) as h, '${marker}' as m from (select generate_series(1, 200000000) as i) s`, batch_rows: 500 }, dataset: 'dropped' })
  await killer
  failed(dropped.result)
  assert.equal(dropped.result.kind, 'infrastructure')
  assert.equal(dropped.result.retryable, true)
  // The server's message, or the socket error when the driver noticed the closed socket first.
  assert.match(dropped.result.message, /connection warehouse failed after \d+ rows were read \((terminating connection due to administrator command|write EPIPE|read ECONNRESET|Connection terminated unexpectedly)\); nothing was published/)
  assert.equal(await h.datasets.get('dropped'), undefined)
  assert.equal(await versionCount(h), 1)
})
