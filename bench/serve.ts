/**
 * Model server benchmark (issue 12, acceptance 5), beside bare `session.run` in the same run:
 *   bare      the model called in-process through onnxruntime-node (same session options as the
 *             server): one caller in a loop (latency), one caller that pauses 1 ms between calls
 *             (the pace of the HTTP client: a model called after a pause runs with cold caches), and
 *             64 concurrent callers (throughput); for 1-row requests also one caller running 64 rows
 *             per call, what batching 64 callers in-process would give (rows/s)
 *   floor     a bare node:http server in this process that reads the same body, JSON.parse()s it and
 *             answers a fixed body of the same shape: no model, no Fastify, no checks. What any Node
 *             HTTP + JSON server pays on this machine, the limit for the server's figures
 *   HTTP      POST /v2/models/{name}/infer on the real server (bearer token, Open Inference Protocol
 *             JSON, the traffic split, serving figures and metrics: everything a client pays for),
 *             the client in a separate process: one connection in a loop (latency, sub-millisecond
 *             timing; a minimal HTTP/1.1 client over a raw socket, as wrk would be, and once with
 *             node:http's client for comparison), and 64 connections with autocannon (throughput),
 *             dynamic batching off and on; at one client also with the Binary Tensor Data Extension
 *             (HTTP binary: the input's bytes after the JSON, the output answered as bytes)
 * for 1-row and 64-row requests, on two models built here: `tiny` (y = sigmoid(xW + b), 16 features:
 * the cost is all in carrying the request) and `mlp` (64 -> 512 -> 512 -> 1: the cost is in the model).
 * The client shares the machine's cores with the server (on 2 cores it takes about one), the bare
 * callers do not.
 * Goals: HTTP overhead <= 0.3 ms at p50 (against the looping caller, as the goal was set; the paced
 * caller's figure is printed beside it); with batching, >= 80 % of bare throughput at 64 concurrent
 * clients. Prints figures and the load average; never pass/fail.
 * Usage: node bench/serve.ts [--seconds S] [--models tiny,mlp] [--rows 1,64] [--client wrk|autocannon] [--threads N] (model threads per
 * version, the server's default when not given; 0: every run on the event loop)
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import * as ort from 'onnxruntime-node'
import { silentLogger } from '../engine/log.ts'
import { createDb } from '../engine/store/db.ts'
import { startEmbeddedPostgres } from '../engine/store/embedded.ts'
import { migrate } from '../engine/store/migrate.ts'
import { createModels } from '../engine/models/registry.ts'
import { createToken } from '../engine/web/auth/tokens.ts'
import { DEFAULT_MODEL_THREADS, createServeServer } from '../engine/serve/serve-server.ts'
import type { ServeServerOptions } from '../engine/serve/serve-server.ts'
import { mlpModel, sigmoidModel } from '../test/helpers/onnx-models.ts'
import { hasWrk, runWrk } from './wrk.ts'
import { rawConnection, rawRequest } from './raw-http.ts'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    models: { type: 'string', default: 'tiny,mlp' },
    rows: { type: 'string', default: '1,64' },
    connections: { type: 'string', default: '64' },
    threads: { type: 'string' },
    // The throughput load generator: wrk (C, when installed: `apt-get install wrk`) or autocannon.
    client: { type: 'string' },
    // Internal: the load generator's own process.
    'load-mode': { type: 'string' }, 'load-url': { type: 'string' }, 'load-token': { type: 'string' }, 'load-body': { type: 'string' },
    // Internal: the body is base64 of a binary tensor body whose JSON part has this many bytes.
    'load-binary': { type: 'string' },
  },
})
const SECONDS = Number(values.seconds)
const THREADS = values.threads === undefined ? undefined : Number(values.threads)
const CONNECTIONS = Number(values.connections)
const WRK = (values.client ?? (hasWrk() ? 'wrk' : 'autocannon')) === 'wrk'
const log = silentLogger()
const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

interface Figures {
  p50: number
  p99: number
  /** Requests (or runs) per second. */
  rps: number
  bad: number
}

// ---- the load generator process ----
if (values['load-mode'] !== undefined) {
  const url = new URL(values['load-url']!)
  const jsonLength = values['load-binary']
  const body = jsonLength === undefined ? values['load-body']! : Buffer.from(values['load-body']!, 'base64')
  const headers: Record<string, string> = jsonLength === undefined
    ? { authorization: `Bearer ${values['load-token']}`, 'content-type': 'application/json' }
    : { authorization: `Bearer ${values['load-token']}`, 'content-type': 'application/octet-stream', 'inference-header-content-length': jsonLength }
  let figures: Figures
  if (values['load-mode'] === 'latency' || values['load-mode'] === 'latency-node') {
    // One keep-alive connection in a closed loop, timed with performance.now() (autocannon counts whole
    // milliseconds). The client is a minimal HTTP/1.1 one over a raw socket (the request's bytes made
    // once; the answer framed by its content-length and its status read), as wrk or h2load would be:
    // node:http's client costs more per request than the server's whole route (mode latency-node
    // measures with it, for comparison).
    const once1 = values['load-mode'] === 'latency' ? await rawClient(url, headers, body) : nodeClient(url, headers, body as string)
    for (let i = 0; i < 500; i++) await once1()
    const latencies: number[] = []
    let bad = 0
    const stopAt = performance.now() + SECONDS * 1000
    while (performance.now() < stopAt) {
      const started = performance.now()
      if ((await once1()) !== 200) bad++
      latencies.push(performance.now() - started)
    }
    latencies.sort((a, b) => a - b)
    figures = { p50: pct(latencies, 50), p99: pct(latencies, 99), rps: latencies.length / SECONDS, bad }
  } else {
    await autocannon({ url: url.toString(), connections: CONNECTIONS, duration: 1, requests: [{ method: 'POST', headers, body: body as string }] })
    const r = await autocannon({ url: url.toString(), connections: CONNECTIONS, duration: SECONDS, requests: [{ method: 'POST', headers, body: body as string }] })
    figures = { p50: r.latency.p50, p99: r.latency.p99, rps: r.requests.average, bad: r.non2xx + r.errors + r.timeouts }
  }
  process.stdout.write(JSON.stringify(figures))
  process.exit(0)
}

// ---- the benchmark ----
const MODELS: Record<string, { features: number; bytes: () => Uint8Array }> = {
  tiny: { features: 16, bytes: () => sigmoidModel(Array.from({ length: 16 }, (_, i) => (i % 5) / 10 - 0.2), 0.1) },
  mlp: { features: 64, bytes: () => mlpModel(64, 512) },
}
const chosen = values.models!.split(',').filter((m) => m in MODELS)
const rowsOf = (rows: number, features: number) => Array.from({ length: rows * features }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5)

const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-serve-'))
const pgServer = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), log, ephemeral: true })
const db = createDb(pgServer.url, { log, max: 10 })
try {
  await migrate(db, log)
  const models = createModels({ db, dir: join(dir, 'data'), producer: { kind: 'actor', actor: 'bench' } })
  for (const name of chosen) {
    const file = join(dir, `${name}.onnx`)
    writeFileSync(file, MODELS[name]!.bytes())
    const v = (await models.register({ name, file })).version.version
    await models.setStage(name, v, 'production', { user: 'bench' })
  }
  const token = (await createToken(db, { name: 'bench', role: 'viewer' }))!.token
  console.log(`model server: ${SECONDS} s per figure, ${CONNECTIONS} concurrent clients for throughput, model threads ${THREADS ?? `${DEFAULT_MODEL_THREADS} (default)`}, throughput load from ${WRK ? 'wrk (1 thread)' : 'autocannon'}, node ${process.version}, ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)

  const load = async (mode: 'latency' | 'latency-node' | 'throughput', url: string, body: string | { binary: Buffer; jsonLength: number }): Promise<Figures> => {
    if (mode === 'throughput' && WRK && typeof body === 'string') return wrkLoad(dir, url, token, body)
    const bodyArgs = typeof body === 'string' ? ['--load-body', body] : ['--load-body', body.binary.toString('base64'), '--load-binary', String(body.jsonLength)]
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--load-mode', mode, '--load-url', url, '--load-token', token, ...bodyArgs, '--seconds', String(SECONDS), '--connections', String(CONNECTIONS)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')))
    await once(child, 'exit')
    return JSON.parse(out) as Figures
  }
  const serve = async (options: Partial<ServeServerOptions>) => {
    const server = await createServeServer({ db, log, dataDir: join(dir, 'data'), ...(THREADS === undefined ? {} : { threads: THREADS }), ...options })
    await server.app.listen({ port: 0, host: '127.0.0.1' })
    return { server, port: (server.app.server.address() as { port: number }).port }
  }
  const show = (label: string, f: Figures, rows: number, extra = '') =>
    console.log(`    ${label.padEnd(44)} p50 ${f.p50.toFixed(3).padStart(7)} ms  p99 ${f.p99.toFixed(3).padStart(7)} ms  ${f.rps.toFixed(0).padStart(6)} req/s  ${(f.rps * rows).toFixed(0).padStart(8)} rows/s${f.bad > 0 ? `  (${f.bad} failed)` : ''}${extra}`)

  for (const name of chosen) {
    const { features } = MODELS[name]!
    console.log(`  ${name} (${features} features)`)
    const session = await ort.InferenceSession.create(join(dir, `${name}.onnx`), { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' })
    // Both servers up from the start; each HTTP figure is taken right after its bare counterpart, so
    // that the load of a shared machine weighs on both alike.
    const plain = await serve({})
    const batched = await serve({ batching: { maxBatch: 64, maxDelayMs: 0 } })
    const floor = await floorServer(name, features)
    try {
      for (const rows of values.rows!.split(',').map(Number)) {
        const feeds = { x: new ort.Tensor('float32', Float32Array.from(rowsOf(rows, features)), [rows, features]) }
        for (let i = 0; i < 200; i++) await session.run(feeds)
        const body = JSON.stringify({ inputs: [{ name: 'x', shape: [rows, features], datatype: 'FP32', data: rowsOf(rows, features) }] })
        // The same request with the Binary Tensor Data Extension: the input's bytes after the JSON, and
        // the output asked for as bytes.
        const tensor = Buffer.from(Float32Array.from(rowsOf(rows, features)).buffer)
        const binaryJson = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [rows, features], datatype: 'FP32', parameters: { binary_data_size: tensor.length } }], parameters: { binary_data_output: true } }))
        const binaryBody = { binary: Buffer.concat([binaryJson, tensor]), jsonLength: binaryJson.length }
        const r = `${rows} row${rows > 1 ? 's' : ''}`
        // One caller: latency of session.run.
        const latencies: number[] = []
        let stopAt = performance.now() + SECONDS * 1000
        while (performance.now() < stopAt) {
          const started = performance.now()
          await session.run(feeds)
          latencies.push(performance.now() - started)
        }
        latencies.sort((a, b) => a - b)
        const seq = { p50: pct(latencies, 50), p99: pct(latencies, 99), rps: latencies.length / SECONDS, bad: 0 }
        show(`bare session.run, ${r}, 1 caller`, seq, rows)
        // One caller that pauses between calls, as a server between requests: the model's cost when it is not called in a tight loop.
        const paced: number[] = []
        stopAt = performance.now() + Math.min(SECONDS, 2) * 1000
        while (performance.now() < stopAt) {
          await new Promise((resolve) => setTimeout(resolve, 1))
          const started = performance.now()
          await session.run(feeds)
          paced.push(performance.now() - started)
        }
        paced.sort((a, b) => a - b)
        const cold = { p50: pct(paced, 50), p99: pct(paced, 99), rps: 0, bad: 0 }
        console.log(`    ${`bare session.run, ${r}, 1 caller, paced`.padEnd(44)} p50 ${cold.p50.toFixed(3).padStart(7)} ms  p99 ${cold.p99.toFixed(3).padStart(7)} ms  (a call after each 1 ms pause)`)
        const flat = await load('latency', `http://127.0.0.1:${floor.port}/v2/models/${name}/infer`, body)
        show(`floor (node:http + JSON), ${r}, 1 client`, flat, rows)
        for (const [label, s] of [['HTTP', plain], ['HTTP batched', batched]] as const) {
          const lat = await load('latency', `http://127.0.0.1:${s.port}/v2/models/${name}/infer`, body)
          show(`${label}, ${r}, 1 client`, lat, rows, `  overhead at p50 ${(lat.p50 - seq.p50).toFixed(3)} ms (paced ${(lat.p50 - cold.p50).toFixed(3)} ms)`)
        }
        const bin = await load('latency', `http://127.0.0.1:${plain.port}/v2/models/${name}/infer`, binaryBody)
        show(`HTTP binary, ${r}, 1 client`, bin, rows, `  overhead at p50 ${(bin.p50 - seq.p50).toFixed(3)} ms (paced ${(bin.p50 - cold.p50).toFixed(3)} ms)`)
        const viaNode = await load('latency-node', `http://127.0.0.1:${plain.port}/v2/models/${name}/infer`, body)
        show(`HTTP, ${r}, 1 client using node:http's client`, viaNode, rows, `  (the same route; what node:http's client adds)`)
        // 64 callers at once, each in a loop: the throughput the model gives in-process.
        const conc: number[] = []
        stopAt = performance.now() + SECONDS * 1000
        await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
          while (performance.now() < stopAt) {
            const started = performance.now()
            await session.run(feeds)
            conc.push(performance.now() - started)
          }
        }))
        conc.sort((a, b) => a - b)
        const bare = { p50: pct(conc, 50), p99: pct(conc, 99), rps: conc.length / SECONDS, bad: 0 }
        show(`bare session.run, ${r}, ${CONNECTIONS} callers`, bare, rows)
        // What batching the 64 callers in-process would give: one caller, 64 rows per call.
        let batchedBare: Figures | undefined
        if (rows === 1) {
          const wide = { x: new ort.Tensor('float32', Float32Array.from(rowsOf(CONNECTIONS, features)), [CONNECTIONS, features]) }
          let runs = 0
          stopAt = performance.now() + SECONDS * 1000
          while (performance.now() < stopAt) {
            await session.run(wide)
            runs++
          }
          batchedBare = { p50: 0, p99: 0, rps: (runs * CONNECTIONS) / SECONDS, bad: 0 }
          console.log(`    ${`bare session.run, ${CONNECTIONS} rows a call`.padEnd(44)} ${(runs / SECONDS).toFixed(0).padStart(47)} req/s  ${batchedBare.rps.toFixed(0).padStart(8)} rows/s  (the ${CONNECTIONS} callers batched in-process)`)
        }
        const flatThr = await load('throughput', `http://127.0.0.1:${floor.port}/v2/models/${name}/infer`, body)
        show(`floor (node:http + JSON), ${r}, ${CONNECTIONS} clients`, flatThr, rows, `  ${((flatThr.rps / bare.rps) * 100).toFixed(0)} % of bare (${CONNECTIONS} callers)`)
        for (const [label, s] of [['HTTP', plain], ['HTTP batched', batched]] as const) {
          const thr = await load('throughput', `http://127.0.0.1:${s.port}/v2/models/${name}/infer`, body)
          const ofBatched = batchedBare && s === batched ? `, ${((thr.rps * rows / batchedBare.rps) * 100).toFixed(1)} % of bare batched rows/s` : ''
          show(`${label}, ${r}, ${CONNECTIONS} clients`, thr, rows, `  ${((thr.rps / bare.rps) * 100).toFixed(0)} % of bare (${CONNECTIONS} callers)${ofBatched}`)
        }
      }
    } finally {
      floor.server.close()
      await plain.server.close()
      await batched.server.close()
      await session.release()
    }
    console.log(`    load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  }
} finally {
  await db.close()
  await pgServer.stop()
  rmSync(dir, { recursive: true, force: true })
}

/** The floor: node:http, the body read and JSON.parse()d, a fixed answer of the server's shape. */
async function floorServer(model: string, features: number): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { inputs: { shape: number[] }[] }
      const rows = body.inputs[0]!.shape[0]!
      const out = JSON.stringify({ model_name: model, model_version: '1', outputs: [{ name: 'y', shape: [rows, 1], datatype: 'FP32', data: Array.from({ length: rows }, (_, i) => (i * features) / 7919) }] })
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(out) })
      res.end(out)
    })
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as { port: number }).port }
}

/** One request at a time through node:http's client (an Agent keeping one connection alive); resolves with the status. */
function nodeClient(url: URL, headers: Record<string, string>, body: string): () => Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  return () => new Promise<number>((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** One request at a time over one raw keep-alive socket (raw-http.ts), the request's bytes made once. */
async function rawClient(url: URL, headers: Record<string, string>, body: string | Buffer): Promise<() => Promise<number>> {
  const request = rawRequest(url, 'POST', url.pathname, headers, body)
  const connection = await rawConnection(url)
  return () => connection.send(request)
}

/** CONNECTIONS keep-alive connections posting the body for SECONDS from wrk, after 1 s of warm-up. */
async function wrkLoad(dir: string, url: string, token: string, body: string): Promise<Figures> {
  const lua = ['wrk.method = "POST"', `wrk.body = ${JSON.stringify(body)}`, 'wrk.headers["Content-Type"] = "application/json"', `wrk.headers["Authorization"] = "Bearer ${token}"`]
  await runWrk({ url, connections: CONNECTIONS, seconds: 1, dir, lua })
  const f = await runWrk({ url, connections: CONNECTIONS, seconds: SECONDS, dir, lua })
  return { p50: f.p50Ms, p99: f.p99Ms, rps: f.rps, bad: f.bad }
}
