/**
 * The model server process part (`cairn serve`, and inside `cairn up`): Fastify with the Open
 * Inference Protocol routes (oip-routes.ts), bearer tokens checked as the web process checks them
 * (with its cache of verified tokens, emptied by credential notices), the registry followed through
 * LISTEN/NOTIFY (registry-follower.ts), per-version figures written for rollouts (serving-stats.ts)
 * and Prometheus metrics on /metrics.
 */
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import Fastify, { LogController } from 'fastify'
import type { FastifyBaseLogger, FastifyError, FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { isConnectionError } from '../store/db.ts'
import type { Db } from '../store/db.ts'
import { readVersionArtifact } from '../store/serving.ts'
import { identify } from '../web/auth/authenticate.ts'
import { createTokenCache } from '../web/auth/token-cache.ts'
import { startCacheFeed } from '../web/cache-feed.ts'
import { createOnlineRowCache } from '../data/online-cache.ts'
import { createOnlineStore } from '../data/online-store.ts'
import type { CacheFeed } from '../web/cache-feed.ts'
import type { BatchOptions } from './batcher.ts'
import { INFERENCE_HEADER, splitBinaryBody } from './binary-tensors.ts'
import { createDataPlane } from './inference.ts'
import { createModelRepository } from './model-repository.ts'
import type { LoadModel, ModelRepository } from './model-repository.ts'
import { loadOnnxModel } from './onnx-session.ts'
import { oipRoutes } from './oip-routes.ts'
import { startRegistryFollower } from './registry-follower.ts'
import type { RegistryFollower } from './registry-follower.ts'
import { createServeMetrics } from './serve-metrics.ts'
import { createServingStats } from './serving-stats.ts'
import type { ServingStats } from './serving-stats.ts'

export const DEFAULT_SERVE_PORT = 8081
export const DEFAULT_BODY_LIMIT = 4 * 1024 * 1024
export const DEFAULT_MODEL_THREADS = 1

export interface ServeServerOptions {
  db: Db
  log: Logger
  /** The data directory: model files are under its `_models` folder. */
  dataDir: string
  /** bearer: inference and metadata need an API token of any role. @default "bearer" */
  auth?: 'bearer' | 'none'
  /** @default 4 MiB */
  bodyLimit?: number
  /** Dynamic batching; off when undefined. */
  batching?: BatchOptions
  /** How often the registry is read without a notice. @default 5000 */
  pollMs?: number
  /** How long a verified token is reused. @default 2000 */
  tokenCacheMs?: number
  /**
   * Model threads per loaded version (worker threads with their own ONNX Runtime session): runs that
   * cost more than handing them over go there, so inference and HTTP work overlap; 0: every run on the
   * event loop. @default 1
   */
  threads?: number
  /** With threads: a run expected to be cheaper than this (ms) stays on the event loop. @default 0.05 */
  inlineBelowMs?: number
  /** Loads a model file (ONNX Runtime by default). */
  load?: LoadModel
  /** Names this process in the serving figures. @default hostname:pid:random */
  serverId?: string
  /** How often the serving figures are written. @default 250 */
  flushMs?: number
  /** Online feature rows kept in memory for enrichment (0: none). @default 100000 */
  onlineCacheRows?: number
}

export interface ServeServer {
  app: FastifyInstance
  repository: ModelRepository
  follower: RegistryFollower
  stats: ServingStats
  serverId: string
  close(): Promise<void>
}

export async function createServeServer(options: ServeServerOptions): Promise<ServeServer> {
  const log = options.log.child({ component: 'serve' })
  const { db } = options
  const auth = options.auth ?? 'bearer'
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT
  const serverId = options.serverId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  const app: FastifyInstance = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    // The body is read field by field, never merged into another object: no prototype scan needed.
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
    routerOptions: { caseSensitive: true, ignoreTrailingSlash: false, maxParamLength: 200 },
  })

  // A request body is read as JSON whatever its declared type: clients of the protocol often send
  // none or another (fetch with a string body says text/plain, curl -d says form-urlencoded), and
  // the protocol's bodies are JSON. application/json keeps Fastify's own parser. Any other type
  // (application/octet-stream, as KServe's client sends, or none, as Triton's) with the header
  // Inference-Header-Content-Length is a body of the Binary Tensor Data Extension: its JSON part and
  // the bytes after it (binary-tensors.ts); without the header, JSON as before.
  app.removeContentTypeParser('text/plain')
  const json = app.getDefaultJsonParser('ignore', 'ignore')
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    const header = request.headers[INFERENCE_HEADER]
    if (header === undefined) return json(request, body.toString('utf8'), done)
    const split = splitBinaryBody(body, Array.isArray(header) ? header.join(',') : header)
    if (split.ok) return done(null, split.value)
    done(Object.assign(new Error(split.error), { statusCode: 400 }), undefined)
  })
  const metrics = createServeMetrics()
  const stats = createServingStats({ db, serverId, ...(options.flushMs === undefined ? {} : { flushMs: options.flushMs }), onError: (error) => log.warn({ err: error }, 'writing the serving figures failed; kept for the next write') })
  const threads = options.threads ?? DEFAULT_MODEL_THREADS
  const load: LoadModel =
    options.load ??
    ((file) =>
      loadOnnxModel(file, {
        threads,
        ...(options.inlineBelowMs === undefined ? {} : { inlineBelowMs: options.inlineBelowMs }),
        onThreadStop: (why, restarted) => log.warn({ file, why }, restarted ? 'a model thread stopped; its requests failed and a new thread is starting' : 'a model thread cannot start; the version runs on the event loop'),
      }))
  const repository = createModelRepository({ dataDir: options.dataDir, load, log, ...(options.batching ? { batching: { ...options.batching, concurrency: Math.max(1, threads) } } : {}) })
  const lookup = (model: string, version: number) => readVersionArtifact(db, model, version)
  // Verified tokens and online rows are cached while the notices that make them stale are heard.
  let feed: CacheFeed | undefined
  const isLive = () => feed?.live() ?? false
  const tokens = createTokenCache({ isLive, ...(options.tokenCacheMs === undefined ? {} : { ttlMs: options.tokenCacheMs }) })
  const onlineRows = createOnlineRowCache({ isLive, ...(options.onlineCacheRows === undefined ? {} : { maxRows: options.onlineCacheRows }) })
  feed = await startCacheFeed(db, log, {
    credentials: () => tokens.clear(),
    online: (view) => onlineRows.invalidate(view),
    reset: () => {
      tokens.clear()
      onlineRows.invalidate()
    },
  })
  const onlineStore = createOnlineStore(db, { rowCache: onlineRows })
  const plane = createDataPlane({ repository, lookup, onlineStore })

  app.decorateRequest('principal', null)
  app.addHook('onRequest', async (request, reply) => {
    if (auth === 'none' || request.is404 || request.routeOptions.config.access === 'public') return
    if (request.headers.authorization === undefined) {
      metrics.rejected(401)
      return reply.code(401).header('www-authenticate', 'Bearer realm="cairn"').send({ error: 'this model server needs an API token: send Authorization: Bearer <token> (create one with: npx cairn tokens create NAME --role viewer)' })
    }
    let principal
    try {
      principal = await identify(db, request, tokens)
    } catch (error) {
      if (!isConnectionError(error)) throw error
      metrics.rejected(503)
      return reply.code(503).send({ error: 'the database cannot be reached to check the token; try again shortly' })
    }
    if (!principal) {
      metrics.rejected(401)
      return reply.code(401).header('www-authenticate', 'Bearer realm="cairn"').send({ error: 'the bearer token is not valid (unknown, revoked or expired)' })
    }
    request.principal = principal
  })

  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}` }))
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed')
      return reply.code(500).send({ error: 'internal error (see the server log)' })
    }
    metrics.rejected(status)
    const binary = request.headers[INFERENCE_HEADER] !== undefined && error.code === 'FST_ERR_CTP_INVALID_JSON_BODY'
    return reply.code(status).send({ error: binary ? 'the request has the Inference-Header-Content-Length header (binary tensor data) but says Content-Type: application/json; send it as application/octet-stream' : clientErrorMessage(error, bodyLimit) })
  })

  oipRoutes(app, plane, repository, {
    answered(model, version, status, ms, versionError) {
      metrics.answered(model, version, status, ms / 1000, versionError)
      // A request the client got wrong says nothing about the version (serving-stats.ts).
      if (status < 400 || status >= 500 || versionError) stats.record(model, version, ms, versionError || status >= 500)
    },
  }, lookup)
  app.get('/metrics', { config: { access: 'public' } }, async (_request, reply) => reply.type(metrics.contentType).send(await metrics.render(repository.loaded())))

  const follower = await startRegistryFollower({ db, log, repository, ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }) })
  stats.start()
  await app.ready()
  return {
    app,
    repository,
    follower,
    stats,
    serverId,
    async close() {
      await app.close()
      await follower.close()
      await stats.stop()
      await feed?.close()
      await repository.close()
    },
  }
}

function clientErrorMessage(error: FastifyError, bodyLimit: number): string {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `the request body is larger than this server's limit of ${bodyLimit} bytes (serve.body_limit in cairn.yaml)`
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'send the request body as JSON (Content-Type: application/json)'
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'the request body is empty; an inference request is a JSON object with "inputs"'
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'the request body is not valid JSON'
    default:
      return error instanceof SyntaxError ? `the request body is not valid JSON: ${error.message}` : error.message
  }
}
