/**
 * Online feature lookup latency (issue 10, acceptance 4): `GET /api/v1/features/{view}/online?user_id=...`
 * on the real web server (bearer token auth, schema validation, secret masking: everything a client
 * pays for), 50 concurrent HTTP clients (autocannon) each asking for a random one of 100k entities,
 * beside the bare SQL primary-key lookup through pg at the same concurrency (the floor the route
 * stands on). The route is measured without the in-memory caches (every request asks Postgres), with
 * them from a cold start, and warm. Goal: route p99 <= 5 ms. Prints figures; never pass/fail.
 * Usage: node bench/online.ts [--entities N] [--seconds S] [--connections C]
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import pg from 'pg'
import { silentLogger } from '../engine/log.ts'
import { createDatasets } from '../engine/data/datasets.ts'
import { openDuckDb, sqlString } from '../engine/data/duckdb.ts'
import { createFeatureStore } from '../engine/data/feature-store.ts'
import { normalizeFeatureView } from '../engine/data/feature-definition.ts'
import { createDb } from '../engine/store/db.ts'
import { startEmbeddedPostgres } from '../engine/store/embedded.ts'
import { migrate } from '../engine/store/migrate.ts'
import { saveFeatureViews } from '../engine/store/feature-views.ts'
import { createWebServer } from '../engine/web/server.ts'
import type { WebServerOptions } from '../engine/web/server.ts'
import { createToken } from '../engine/web/auth/tokens.ts'

const { values } = parseArgs({
  options: {
    entities: { type: 'string', default: '100000' }, seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '50' },
    // Internal: the load generator's own process (so that it does not share the server's event loop).
    'load-url': { type: 'string' }, 'load-token': { type: 'string' }, 'load-path': { type: 'string' },
  },
})
const ENTITIES = Number(values.entities)
const SECONDS = Number(values.seconds)
const CONNECTIONS = Number(values.connections)
const log = silentLogger()

/** Reads every entity once through the batch route (1000 a request); returns the rows the server now caches. */
async function warmUp(port: number, token: string): Promise<number> {
  for (let i = 0; i < ENTITIES; i += 1000) {
    const entities = Array.from({ length: Math.min(1000, ENTITIES - i) }, (_, j) => ({ user_id: `u${i + j}` }))
    const response = await fetch(`http://127.0.0.1:${port}/api/v1/features/activity/online`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ entities }),
    })
    if (!response.ok) throw new Error(`warm-up: ${response.status} ${await response.text()}`)
  }
  return ENTITIES
}

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
const randomKey = (): string => `u${Math.floor(Math.random() * ENTITIES)}`

if (values['load-url'] !== undefined) {
  const result = await autocannon({
    url: values['load-url'],
    connections: CONNECTIONS,
    duration: SECONDS,
    headers: { authorization: `Bearer ${values['load-token']}` },
    requests: [{ method: 'GET', setupRequest: (request: { path: string }) => ({ ...request, path: values['load-path'] ?? `/api/v1/features/activity/online?user_id=${randomKey()}` }) }],
  })
  process.stdout.write(JSON.stringify({ p50: result.latency.p50, p99: result.latency.p99, rps: result.requests.average, bad: result.non2xx + result.errors + result.timeouts }))
  process.exit(0)
}

const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-online-'))
const server = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), log, ephemeral: true })
const db = createDb(server.url, { log, max: 10 })
try {
  await migrate(db, log)
  const datasets = createDatasets({ db, dir: join(dir, 'datasets'), producer: { kind: 'actor', actor: 'bench' } })
  const events = await datasets.stage('events')
  const duck = await openDuckDb()
  await duck.run(`COPY (SELECT 'u' || (i % ${ENTITIES}) AS user_id, TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL ((hash(i) % 2592000)::BIGINT) SECOND AS ts,
      (hash(i * 13) % 10000) / 100.0 AS amount, ['DE', 'FR', 'IT'][(1 + hash(i) % 3)::BIGINT] AS country FROM range(${ENTITIES * 3}) t(i))
    TO ${sqlString(join(events.dir, 'part-0.parquet'))} (FORMAT parquet)`)
  duck.close()
  await datasets.publish([{ staged: events, producedKind: 'import' }])
  const view = normalizeFeatureView({
    feature_view: 'activity', entity: ['user_id'], source: 'events', timestamp: 'ts', online: true,
    features: { spend_7d: { agg: 'sum', column: 'amount', window: '7d' }, events_1d: { agg: 'count', window: '1d' }, avg_amount: { agg: 'avg', column: 'amount', window: '30d' }, last_country: { agg: 'last', column: 'country' } },
  })
  await db.tx((q) => saveFeatureViews(q, [{ name: 'activity', file: 'activity.yaml', hash: view.hash, definitionJson: view.definitionJson, source: '', description: null, owner: null, tags: [] }]))
  const store = createFeatureStore({ db, datasets, producer: { kind: 'actor', actor: 'bench' } })
  const end = new Date('2026-02-01T00:00:00Z')
  const materialized = await store.materialize({ view: 'activity', intervalStart: end, intervalEnd: end })
  console.log(`online lookups: ${materialized.rowsOnline?.toLocaleString('en')} entities online, ${CONNECTIONS} concurrent clients, ${SECONDS} s each, node ${process.version}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)

  // Bare SQL: the route's per-request lookup (it keeps the view's definition for a second) through pg, same concurrency.
  const pool = new pg.Pool({ connectionString: server.url, max: CONNECTIONS })
  const sql = `SELECT entity_key, entity, features, feature_timestamp, definition_version FROM cairn.feature_online WHERE view = $1 AND entity_key = $2`
  await Promise.all(Array.from({ length: CONNECTIONS }, () => pool.query(sql, ['activity', JSON.stringify([randomKey()])])))
  const latencies: number[] = []
  const stopAt = performance.now() + SECONDS * 1000
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (performance.now() < stopAt) {
      const started = performance.now()
      await pool.query(sql, ['activity', JSON.stringify([randomKey()])])
      latencies.push(performance.now() - started)
    }
  }))
  await pool.end()
  latencies.sort((a, b) => a - b)
  console.log(`  ${'bare SQL lookup (pg)'.padEnd(34)} p50 ${pct(latencies, 50).toFixed(2)} ms  p99 ${pct(latencies, 99).toFixed(2)} ms  ${(latencies.length / SECONDS).toFixed(0)} lookups/s`)

  const token = (await createToken(db, { name: 'bench', role: 'viewer' }))!.token
  // autocannon in a process of its own: in this one it would share the server's event loop.
  const load = async (port: number, label: string, path?: string) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--load-url', `http://127.0.0.1:${port}`, '--load-token', token,
      '--entities', String(ENTITIES), '--seconds', String(SECONDS), '--connections', String(CONNECTIONS), ...(path ? ['--load-path', path] : [])], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')))
    await once(child, 'exit')
    const r = JSON.parse(out) as { p50: number; p99: number; rps: number; bad: number }
    console.log(`  ${label.padEnd(34)} p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  ${r.rps.toFixed(0)} requests/s${r.bad > 0 ? `  (${r.bad} failed)` : ''}`)
  }
  const serve = async (options: Partial<WebServerOptions>) => {
    const app = await createWebServer({ db, log, ...options })
    await app.listen({ port: 0, host: '127.0.0.1' })
    return { app, port: (app.server.address() as { port: number }).port }
  }

  // Without the in-memory caches: every request checks the token and looks the row up in Postgres.
  const uncached = await serve({ tokenCacheMs: 0, onlineCacheRows: 0 })
  try {
    await load(uncached.port, 'GET .../online, no caches')
  } finally {
    await uncached.app.close()
  }
  // With the caches (token, online rows; sized to hold every entity): a fresh server starts empty, so
  // the first run pays a database lookup for every entity not asked before (cold); the second runs
  // after every entity was read once (warm).
  const cached = await serve({ onlineCacheRows: ENTITIES })
  try {
    await load(cached.port, 'GET .../online, cold cache')
    const rows = await warmUp(cached.port, token)
    await load(cached.port, `GET .../online, warm (${rows.toLocaleString('en')} rows)`)
    // The same server's cheapest authenticated route: what the server costs without a lookup.
    await load(cached.port, 'GET /api/v1/session', '/api/v1/session')
  } finally {
    await cached.app.close()
  }
} finally {
  await db.close()
  await server.stop()
  rmSync(dir, { recursive: true, force: true })
}
