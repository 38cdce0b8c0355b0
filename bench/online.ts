/**
 * Online feature lookup latency (issue 10, acceptance 4): `GET /api/v1/features/{view}/online?user_id=...`
 * on the real web server (bearer token auth, role check, schema validation, secret masking: everything a
 * client pays for), 50 concurrent HTTP clients (autocannon) each asking for a random one of 100k
 * entities, beside the bare SQL primary-key lookup through pg at the same concurrency (the floor the
 * route stands on). The route is measured without the in-memory caches (every request asks Postgres),
 * with them from a cold start, and warm: answered by the fast path ahead of Fastify
 * (engine/web/online-fast-path.ts), and with the fast path off (through Fastify's routing and hooks);
 * the POST form with one entity and the server's cheapest authenticated route (`GET /api/v1/session`)
 * for comparison, and a bare Node HTTP server answering one constant JSON body (no auth, no lookup:
 * the floor of Node's HTTP on the machine). Goal: route p99 <= 5 ms. Prints figures; never pass/fail.
 * When wrk is installed, the warm lookups are also measured from it (a load generator in C: what the
 * route gives when the client takes next to no CPU from the server's two cores).
 *
 * Those are closed loops at top speed: 50 clients each sending its next request the moment an answer
 * is in, so a request's latency is mostly the time it queues behind the 49 others. Feast's published
 * figures (~3.9 ms p99 for its Go server) were measured at fixed rates (vegeta, 10-100 requests a
 * second over 5 connections). The paced phase measures so, at each of --rates over the 50 connections
 * (paced-load.ts; autocannon's rate option sends each second's quota in one burst), the warm route
 * beside the bare SQL lookup and bare Node's constant answer at the same rate. The run starts by
 * measuring how long this machine keeps a busy process off its CPU (stalls.ts): a virtual machine's
 * pauses of several milliseconds are a floor no p99 here goes below.
 *
 * The load generator always runs in a process of its own. Each measurement is made twice:
 * - pinned: the load generator on CPU 1, everything else (this process with the web server, Postgres)
 *   on CPU 0, so the two sides do not take turns on one core (other jobs on the machine are not pinned);
 * - unpinned: the scheduler puts every process where it likes.
 * Latencies are measured per request in the load generator (to 0.01 ms; autocannon's own histogram
 * has 1 ms steps); each phase starts after a full garbage collection of this process; "server CPU" is this process's CPU time (user + system) over the requests served.
 *
 * Usage: node bench/online.ts [--entities N] [--seconds S] [--connections C] [--pin both|yes|no]
 *          [--only sql,uncached,cold,warm,wrk,paced,fastify,post,session,node] [--rounds N] [--rates R1,R2]
 *
 * --rounds N measures the chosen phases N times in a row in each mode (on a shared machine the load
 * changes from one phase to the next, and the first phase of a process runs before the JIT has
 * settled: compare phases of the later rounds).
 */
import { execFileSync, spawn } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
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
import { SECURITY_HEADERS, createWebServer } from '../engine/web/server.ts'
import type { WebServerOptions } from '../engine/web/server.ts'
import { createToken } from '../engine/web/auth/tokens.ts'
import { hasWrk, runWrk } from './wrk.ts'
import { pacedLoad } from './paced-load.ts'
import { measureStalls, stallsLine } from './stalls.ts'
import { rawConnection, rawRequest } from './raw-http.ts'

const PHASES = ['sql', 'uncached', 'cold', 'warm', 'wrk', 'paced', 'fastify', 'post', 'session', 'node'] as const
const { values } = parseArgs({
  options: {
    entities: { type: 'string', default: '100000' }, seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '50' },
    pin: { type: 'string', default: 'both' }, only: { type: 'string', default: PHASES.join(',') }, rounds: { type: 'string', default: '1' },
    rates: { type: 'string', default: '1000,5000' },
    // Internal: the load generator's own process (so that it does not share the server's event loop).
    'load-rate': { type: 'string' }, 'load-url': { type: 'string' }, 'load-token': { type: 'string' }, 'load-path': { type: 'string' }, 'load-method': { type: 'string' }, 'load-sql': { type: 'string' },
  },
})
const ENTITIES = Number(values.entities)
const SECONDS = Number(values.seconds)
const CONNECTIONS = Number(values.connections)
const RATES = values.rates.split(',').map(Number).filter((r) => r > 0)
const log = silentLogger()

interface LoadResult { p50: number; p99: number; rps: number; n: number; bad: number }

const pct = (sorted: ArrayLike<number>, p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
/** The statement the route sends for one entity. */
const LOOKUP_SQL = `SELECT entity_key, entity, features, feature_timestamp, definition_version FROM cairn.feature_online WHERE view = $1 AND entity_key = $2`
const randomKey = (): string => `u${Math.floor(Math.random() * ENTITIES)}`
/** The bare lookup's pool of CONNECTIONS, each connection opened (one lookup each) before any is timed. */
const lookupPool = async (url: string): Promise<{ pool: pg.Pool; lookUp: () => Promise<pg.QueryResult> }> => {
  const pool = new pg.Pool({ connectionString: url, max: CONNECTIONS })
  const lookUp = () => pool.query(LOOKUP_SQL, ['activity', JSON.stringify([randomKey()])])
  await Promise.all(Array.from({ length: CONNECTIONS }, lookUp))
  return { pool, lookUp }
}
const summarize = (latencies: number[], bad: number): LoadResult => {
  const sorted = Float64Array.from(latencies).sort()
  return { p50: pct(sorted, 50), p99: pct(sorted, 99), rps: sorted.length / SECONDS, n: sorted.length, bad }
}

if (values['load-rate'] !== undefined) {
  // At a fixed rate (paced-load.ts): the bare SQL lookup through a pool of CONNECTIONS, or the warm GET
  // over CONNECTIONS raw keep-alive connections (raw-http.ts: the client costs next to nothing).
  const rate = Number(values['load-rate'])
  let send: (slot: number) => Promise<boolean>
  let close: () => Promise<void>
  if (values['load-sql'] !== undefined) {
    const { pool, lookUp } = await lookupPool(values['load-sql'])
    send = async () => (await lookUp()).rowCount === 1
    close = () => pool.end()
  } else {
    const url = new URL(values['load-url']!)
    const headers = { authorization: `Bearer ${values['load-token']}` }
    const connections = await Promise.all(Array.from({ length: CONNECTIONS }, () => rawConnection(url)))
    send = async (slot) => (await connections[slot]!.send(rawRequest(url, 'GET', `/api/v1/features/activity/online?user_id=${randomKey()}`, headers))) === 200
    close = async () => connections.forEach((c) => c.close())
    for (let i = 0; i < 1000; i++) await send(i % CONNECTIONS)
  }
  const { latencies, bad } = await pacedLoad({ rate, seconds: SECONDS, slots: CONNECTIONS, send })
  await close()
  process.stdout.write(JSON.stringify(summarize(latencies, bad)))
  process.exit(0)
}

if (values['load-sql'] !== undefined) {
  // The bare lookup: the statement the route would send, through pg, CONNECTIONS at a time.
  const { pool, lookUp } = await lookupPool(values['load-sql'])
  const latencies: number[] = []
  const stopAt = performance.now() + SECONDS * 1000
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (performance.now() < stopAt) {
      const started = performance.now()
      await lookUp()
      latencies.push(performance.now() - started)
    }
  }))
  await pool.end()
  process.stdout.write(JSON.stringify(summarize(latencies, 0)))
  process.exit(0)
}

if (values['load-url'] !== undefined) {
  const latencies: number[] = []
  let bad = 0
  const post = values['load-method'] === 'POST'
  const path = values['load-path']
  const instance = autocannon({
    url: values['load-url'],
    connections: CONNECTIONS,
    duration: SECONDS,
    headers: { authorization: `Bearer ${values['load-token']}`, ...(post ? { 'content-type': 'application/json' } : {}) },
    requests: [post
      ? { method: 'POST', path: '/api/v1/features/activity/online', setupRequest: (request) => ({ ...request, body: JSON.stringify({ entities: [{ user_id: randomKey() }] }) }) }
      : { method: 'GET', setupRequest: (request) => ({ ...request, path: path ?? `/api/v1/features/activity/online?user_id=${randomKey()}` }) }],
  })
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status >= 200 && status < 300) latencies.push(ms)
    else bad++
  })
  const result = await instance
  process.stdout.write(JSON.stringify(summarize(latencies, bad + result.errors + result.timeouts)))
  process.exit(0)
}

setFlagsFromString('--expose-gc')
const collectGarbage = runInNewContext('gc') as () => void

// Pinning: taskset (util-linux) sets the CPU affinity of a process's threads (-a); children inherit it.
const cpus = availableParallelism()
let canPin = cpus >= 2
try {
  execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' })
} catch {
  canPin = false
}
const modes: boolean[] = values.pin === 'yes' ? [true] : values.pin === 'no' ? [false] : [true, false]
if (modes.includes(true) && !canPin) console.log(`(pinned runs skipped: ${cpus < 2 ? 'fewer than 2 CPUs' : 'taskset is not available'})`)
const runModes = modes.filter((pinned) => !pinned || canPin)
const wrkInstalled = hasWrk()
if (values.only.split(',').includes('wrk') && !wrkInstalled) console.log('(the wrk row is skipped: wrk is not installed; apt-get install wrk)')
const only = new Set(values.only.split(','))
const allCpus = `0-${cpus - 1}`
let postgresPid = 0
/** Pins this process and Postgres (the postmaster and its backends: later backends inherit it) to CPU 0, or frees them. */
const pinServerSide = (pinned: boolean) => {
  const list = pinned ? '0' : allCpus
  const children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(postgresPid)], { encoding: 'utf8' }).split('\n').map((s) => s.trim()).filter(Boolean)
  for (const pid of [String(process.pid), String(postgresPid), ...children]) {
    try {
      execFileSync('taskset', ['-a', '-p', '-c', list, pid], { stdio: 'ignore' })
    } catch {
      // a backend that exited meanwhile
    }
  }
}

const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-online-'))
const server = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), log, ephemeral: true })
postgresPid = Number(readFileSync(join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0])
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
  const token = (await createToken(db, { name: 'bench', role: 'viewer' }))!.token
  console.log(`online lookups: ${materialized.rowsOnline?.toLocaleString('en')} entities online, ${CONNECTIONS} concurrent clients, ${SECONDS} s each, node ${process.version}, ${cpus} CPUs`)
  console.log(`this machine: ${stallsLine(measureStalls(5000))}`)
  console.log('pinned: load generator on CPU 1, web server and Postgres on CPU 0; unpinned: anywhere. "load" is the 1-minute load average before the run, the processes of this benchmark included.')

  /** Runs one phase's load and prints its figures beside the server's CPU time per request. */
  const phase = async (label: string, pinned: boolean, serverCpu: boolean, load: () => Promise<LoadResult>) => {
    // Each phase starts from a collected heap: otherwise the garbage of set-up and warm-up (hundreds of
    // MB) lands a major collection of 100-200 ms inside whichever phase comes next.
    collectGarbage()
    const average = loadavg()[0]!.toFixed(1)
    const cpuBefore = process.cpuUsage()
    const r = await load()
    const cpu = process.cpuUsage(cpuBefore)
    const perRequest = serverCpu && r.n > 0 ? `  server CPU ${((cpu.user + cpu.system) / r.n).toFixed(0)} us/request` : ''
    console.log(`  ${label.padEnd(36)} ${(pinned ? 'pinned' : 'unpinned').padEnd(8)} load ${average.padStart(4)}  p50 ${r.p50.toFixed(2).padStart(6)} ms  p99 ${r.p99.toFixed(2).padStart(6)} ms  ${r.rps.toFixed(0).padStart(6)}/s${perRequest}${r.bad > 0 ? `  (${r.bad} failed)` : ''}`)
  }
  /** The load generator in a process of its own (pinned to CPU 1 or not). */
  const measure = (label: string, pinned: boolean, args: string[], serverCpu: boolean) => phase(label, pinned, serverCpu, async () => {
    const node = [process.execPath, fileURLToPath(import.meta.url), '--entities', String(ENTITIES), '--seconds', String(SECONDS), '--connections', String(CONNECTIONS), ...args]
    const child = pinned ? spawn('taskset', ['-c', '1', ...node], { stdio: ['ignore', 'pipe', 'inherit'] }) : spawn(node[0]!, node.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')))
    await once(child, 'exit')
    return JSON.parse(out) as LoadResult
  })
  /** The same warm lookups from wrk (bench/wrk.ts): what the route gives when the client costs next to nothing. */
  const measureWrk = (label: string, pinned: boolean, url: string) => phase(label, pinned, true, async () => {
    const f = await runWrk({
      url, connections: CONNECTIONS, seconds: SECONDS, dir, ...(pinned ? { cpu: 1 } : {}),
      lua: [`wrk.headers["Authorization"] = "Bearer ${token}"`, 'math.randomseed(os.time())', `request = function() return wrk.format("GET", "/api/v1/features/activity/online?user_id=u" .. math.random(0, ${ENTITIES - 1})) end`],
    })
    return { p50: f.p50Ms, p99: f.p99Ms, rps: f.rps, n: f.requests, bad: f.bad }
  })
  const serve = async (options: Partial<WebServerOptions>) => {
    const app = await createWebServer({ db, log, ...options })
    await app.listen({ port: 0, host: '127.0.0.1' })
    return { app, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}` }
  }
  /** Reads every entity once through the batch route (1000 a request), so that the server caches them all. */
  const warmUp = async (url: string): Promise<void> => {
    for (let i = 0; i < ENTITIES; i += 1000) {
      const entities = Array.from({ length: Math.min(1000, ENTITIES - i) }, (_, j) => ({ user_id: `u${i + j}` }))
      const response = await fetch(`${url}/api/v1/features/activity/online`, {
        method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ entities }),
      })
      // Read to the end: an unread body keeps its connection busy (the next request opens another), and
      // the server's close then waits for those connections.
      const text = await response.text()
      if (!response.ok) throw new Error(`warm-up: ${response.status} ${text}`)
    }
  }
  /** Node's HTTP server alone, answering one constant body of the lookup's size with the API's headers, whatever is asked. */
  const bareNode = async () => {
    const body = Buffer.from(JSON.stringify({ entity: { user_id: 'u12345' }, features: { spend_7d: 1234.56, events_1d: 2, avg_amount: 51.23, last_country: 'DE' }, feature_timestamp: '2026-02-01T00:00:00.000Z', found: true, expired: false }))
    const bare = createServer((_request, response) => {
      response.writeHead(200, { ...SECURITY_HEADERS, 'cache-control': 'no-store', 'content-type': 'application/json; charset=utf-8', 'content-length': body.length })
      response.end(body)
    })
    await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve))
    return {
      url: `http://127.0.0.1:${(bare.address() as AddressInfo).port}`,
      close: async () => {
        bare.closeAllConnections()
        await new Promise((resolve) => bare.close(resolve))
      },
    }
  }
  const http = (url: string, extra: string[] = []) => ['--load-url', url, '--load-token', token, ...extra]

  const rounds = Array.from({ length: Math.max(1, Number(values.rounds)) }, (_, i) => i)
  for (const pinned of runModes.flatMap((mode) => rounds.map(() => mode))) {
    if (canPin) pinServerSide(pinned)
    // Bare SQL: the route's per-request lookup (it keeps the view's definition for a second) through pg, same concurrency.
    if (only.has('sql')) await measure('bare SQL lookup (pg)', pinned, ['--load-sql', server.url], false)
    // Without the in-memory caches: every request checks the token and looks the row up in Postgres.
    if (only.has('uncached')) {
      const uncached = await serve({ tokenCacheMs: 0, onlineCacheRows: 0 })
      try {
        await measure('GET .../online, no caches', pinned, http(uncached.url), true)
      } finally {
        await uncached.app.close()
      }
    }
    // With the caches (token, online rows; sized to hold every entity): a fresh server starts empty, so
    // the first run pays a database lookup for every entity not asked before (cold); the next ones run
    // after every entity was read once (warm).
    const cached = await serve({ onlineCacheRows: ENTITIES })
    try {
      if (only.has('cold')) await measure('GET .../online, cold cache', pinned, http(cached.url), true)
      if (only.has('warm') || only.has('wrk') || only.has('paced') || only.has('post')) await warmUp(cached.url)
      if (only.has('warm')) await measure(`GET .../online, warm (${ENTITIES.toLocaleString('en')} rows)`, pinned, http(cached.url), true)
      if (only.has('wrk') && wrkInstalled) await measureWrk('GET .../online, warm, from wrk', pinned, cached.url)
      // At fixed rates, as Feast's published figures were measured: latency without 50 requests queued
      // behind each other (a closed loop at top speed measures that queue); the bare SQL at the same rate.
      // Bare Node's constant answer at the same rate: the floor of any route on this machine.
      if (only.has('paced')) {
        const bare = await bareNode()
        try {
          for (const rate of RATES) {
            await measure(`bare SQL lookup (pg), ${rate}/s`, pinned, ['--load-sql', server.url, '--load-rate', String(rate)], false)
            // Warm again: the cache asks the database again for an entry older than a minute.
            await warmUp(cached.url)
            await measure(`GET .../online, warm, ${rate}/s`, pinned, http(cached.url, ['--load-rate', String(rate)]), true)
            await measure(`bare Node HTTP, constant, ${rate}/s`, pinned, http(bare.url, ['--load-rate', String(rate)]), true)
          }
        } finally {
          await bare.close()
        }
      }
      if (only.has('post')) await measure('POST .../online, 1 entity, warm', pinned, http(cached.url, ['--load-method', 'POST']), true)
      // The same server's cheapest authenticated route: what the server costs without a lookup.
      if (only.has('session')) await measure('GET /api/v1/session', pinned, http(cached.url, ['--load-path', '/api/v1/session']), true)
    } finally {
      await cached.app.close()
    }
    // Node's HTTP server alone, one constant answer of the lookup's size with the API's headers: what any route stands on.
    if (only.has('node')) {
      const bare = await bareNode()
      try {
        await measure('bare Node HTTP, constant answer', pinned, http(bare.url, ['--load-path', '/']), true)
      } finally {
        await bare.close()
      }
    }
    // The same warm lookups with the fast path off: Fastify's routing, hooks, validation and serializer.
    if (only.has('fastify')) {
      const slow = await serve({ onlineCacheRows: ENTITIES, onlineFastPath: false })
      try {
        await warmUp(slow.url)
        await measure('GET .../online, warm, via Fastify', pinned, http(slow.url), true)
      } finally {
        await slow.app.close()
      }
    }
  }
} finally {
  if (canPin) pinServerSide(false)
  await db.close()
  await server.stop()
  rmSync(dir, { recursive: true, force: true })
}
