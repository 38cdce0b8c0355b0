/**
 * The web process: the JSON API under /api/v1 (OpenAPI document at /api/v1/openapi.json), login
 * sessions and API tokens, /healthz and /metrics, and the status page at `/` (engine/web/page/).
 *
 * Security in one place: every request passes the auth hook (auth/authenticate.ts, deny by default),
 * every JSON body and log event is masked with the secrets this process knows (secret-masking.ts), and
 * request bodies are JSON only, small, and validated against each route's schema (unknown keys refused).
 */
import { createServer } from 'node:http'
import Fastify, { LogController } from 'fastify'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerFactory } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifyRateLimit from '@fastify/rate-limit'
import fastifySwagger from '@fastify/swagger'
import type { Logger } from 'pino'
import type { Settings } from '../config/settings.ts'
import type { LoadedConfig } from '../config/load-config.ts'
import { isConnectionError } from '../store/db.ts'
import type { Db } from '../store/db.ts'
import { createAuthHook } from './auth/authenticate.ts'
import { DEFAULT_SESSION_TTL_MS } from './auth/sessions.ts'
import type { LoginLimits, WebContext } from './context.ts'
import { createCredentialWatch } from './auth/credential-watch.ts'
import { createTokenCache } from './auth/token-cache.ts'
import { startCacheFeed } from './cache-feed.ts'
import type { CacheFeed } from './cache-feed.ts'
import { createOnlineRowCache } from '../data/online-cache.ts'
import { createOnlineStore } from '../data/online-store.ts'
import { createOnlineFastPath } from './online-fast-path.ts'
import type { OnlineFastPath } from './online-fast-path.ts'
import type { Access } from './auth/authenticate.ts'
import { isRole } from './auth/roles.ts'
import { createLogFeed } from './log-feed.ts'
import { createStateFeed } from './state-feed.ts'
import { createWebMetrics } from './metrics.ts'
import { SHARED_SCHEMAS } from './schemas.ts'
import { createResponseMasker } from './secret-masking.ts'
import type { SecretSource } from './secret-masking.ts'
import { adminRoutes } from './routes/admin.ts'
import { dagRoutes } from './routes/dags.ts'
import { datasetRoutes } from './routes/datasets.ts'
import { featureViewRoutes } from './routes/feature-views.ts'
import { modelRoutes } from './routes/models.ts'
import type { WebDataSettings } from './routes/datasets.ts'
import { dataSettings } from '../config/data-settings.ts'
import { eventRoutes } from './routes/events.ts'
import { featureRoutes } from './routes/features.ts'
import { dagVersionRoutes } from './routes/dag-versions.ts'
import { gridRoutes } from './routes/grid.ts'
import { healthRoutes } from './routes/health.ts'
import { logRoutes } from './routes/logs.ts'
import { pageRoutes } from './routes/page.ts'
import { runRoutes } from './routes/runs.ts'
import { sessionRoutes } from './routes/session.ts'
import { taskRoutes } from './routes/tasks.ts'

export interface WebServerOptions {
  db: Db
  log: Logger
  /** Where the secrets to mask in responses come from. @default none (workers' masking only) */
  secrets?: SecretSource
  now?: () => Date
  /** @default 12 hours */
  sessionTtlMs?: number
  /** Login limits (see LoginLimits in context.ts). @default { perIp: 10, windowMs: 60000, perUser: 5, perUserAnywhere: 50, backoffMs: 1000, maxBackoffMs: 900000 } */
  login?: Partial<LoginLimits>
  /** Who may read /metrics: 'public' (anyone) or the least role a token or session needs. @default "public" */
  metricsAccess?: Access
  /** How often open streams re-check their credentials. @default 2000 */
  credentialCheckMs?: number
  /** Public URL (cairn.yaml web.base_url); an https one makes session cookies Secure even on plain-HTTP requests from a proxy. */
  baseUrl?: string
  /** Believe X-Forwarded-For/-Proto (only behind a reverse proxy you run). @default false */
  trustProxy?: boolean
  /** Poll interval of log streams when no notification arrives. @default 1000 */
  followPollMs?: number
  /** How often live-state streams read new state changes while anyone listens. @default 500 */
  statePollMs?: number
  /** /healthz fails when SELECT 1 takes longer. @default 2000 */
  healthTimeoutMs?: number
  /** Where dataset rows are read from (data.dir of cairn.yaml); without it the row previews answer 503. */
  data?: WebDataSettings
  /** How long a verified bearer token is reused without asking the database (0: every request asks). @default 2000 */
  tokenCacheMs?: number
  /** Online rows kept in memory for lookups (cairn.yaml web.online_cache_rows; 0: none). @default 100000 */
  onlineCacheRows?: number
  /** A cached online row is read again after this long even without a notification. @default 60000 */
  onlineCacheMaxAgeMs?: number
  /** Answer warm online GET lookups before Fastify's routing (online-fast-path.ts); false: every request goes through Fastify. @default true */
  onlineFastPath?: boolean
}

const API_PREFIX = '/api/'
export const SECURITY_HEADERS = Object.freeze({
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
})

export async function createWebServer(options: WebServerOptions): Promise<FastifyInstance> {
  const log = options.log.child({ component: 'web' })
  // The HTTP server Fastify would make (same timeouts), with warm online lookups answered ahead of it.
  let fastPath: OnlineFastPath | undefined
  const serverFactory: FastifyServerFactory = (handler, fastifyOptions) => {
    const opts = fastifyOptions as { keepAliveTimeout?: number; requestTimeout?: number; connectionTimeout?: number }
    const server = createServer((request, response) => {
      if (fastPath === undefined || !fastPath(request, response)) handler(request, response)
    })
    server.keepAliveTimeout = opts.keepAliveTimeout ?? 72_000
    server.requestTimeout = opts.requestTimeout ?? 0
    server.setTimeout(opts.connectionTimeout ?? 0)
    return server
  }
  const app: FastifyInstance = Fastify({
    serverFactory,
    loggerInstance: log as FastifyBaseLogger,
    // Fastify's own per-request info lines are off; onResponse logs each request at debug level.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: options.trustProxy ?? false,
    bodyLimit: 256 * 1024,
    // Spelled-differently paths are different paths: they match no route and need a login anyway.
    routerOptions: { caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, maxParamLength: 300 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
  })
  const closing = new AbortController()
  // The same fact as a plain flag, for the fast path to read on every request (the signal's getter costs more).
  let closingNow = false
  const logFeed = createLogFeed(options.db, log)
  const stateFeed = createStateFeed(options.db, log, options.statePollMs ?? 500)
  const credentials = createCredentialWatch(options.db, log, options.credentialCheckMs ?? 2000)
  // Caches of verified tokens and online rows answer only while their notification feed is live.
  let feed: CacheFeed | undefined
  const isLive = () => feed?.live() ?? false
  const tokenCache = createTokenCache({ isLive, ...(options.tokenCacheMs === undefined ? {} : { ttlMs: options.tokenCacheMs }) })
  const onlineRows = createOnlineRowCache({
    isLive,
    ...(options.onlineCacheRows === undefined ? {} : { maxRows: options.onlineCacheRows }),
    ...(options.onlineCacheMaxAgeMs === undefined ? {} : { maxAgeMs: options.onlineCacheMaxAgeMs }),
  })
  feed = await startCacheFeed(options.db, log, {
    credentials: () => {
      tokenCache.clear()
      credentials.checkNow()
    },
    online: (view) => onlineRows.invalidate(view),
    reset: () => {
      tokenCache.clear()
      onlineRows.invalidate()
    },
  })
  const ctx: WebContext = {
    db: options.db,
    log,
    now: options.now ?? (() => new Date()),
    logFeed,
    stateFeed,
    masker: createResponseMasker(options.secrets),
    closing: closing.signal,
    sessionTtlMs: options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS,
    secureCookies: options.baseUrl?.startsWith('https://') ?? false,
    login: { perIp: 10, windowMs: 60_000, perUser: 5, perUserAnywhere: 50, backoffMs: 1000, maxBackoffMs: 900_000, ...options.login },
    credentials,
    metricsAccess: options.metricsAccess ?? 'public',
    followPollMs: options.followPollMs ?? 1000,
    healthTimeoutMs: options.healthTimeoutMs ?? 2000,
    onlineRows,
  }
  const metrics = createWebMetrics(options.db)

  app.decorateRequest('principal', null)
  // Cookies are parsed only by what needs them (the session lookup, login): a bearer request never pays for it.
  await app.register(fastifyCookie, { hook: false })
  await app.register(fastifyRateLimit, { global: false })
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'cairn', version: '1', description: 'DAGs, runs, task instances and logs of a cairn deployment. Every /api/v1 route except login needs a bearer token or a session cookie (plus X-CSRF-Token on POST).' },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'an API token (`cairn tokens create NAME --role R`)' },
          sessionCookie: { type: 'apiKey', in: 'cookie', name: 'cairn_session', description: 'from POST /api/v1/login; POST requests also need X-CSRF-Token' },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  })
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema)

  // An empty body with a JSON content type is no body (fetch() sends that for a bodiless POST).
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '' || (typeof body === 'string' && body.trim() === '')) done(null, undefined)
    else parseJson(request, body as string, done)
  })

  // The hooks every request passes are callback hooks, not async ones: each async hook costs a promise
  // and a turn of the microtask queue per request, which the online lookup route felt.
  app.addHook('onRequest', createAuthHook(options.db, tokenCache))
  // A bodiless POST is an empty JSON object, so optional bodies need no special schema.
  app.addHook('preValidation', (request, _reply, done) => {
    if (request.body === undefined && request.method === 'POST') request.body = {}
    done()
  })
  app.addHook('preSerialization', (_request, _reply, payload, done) => done(null, ctx.masker().deep(payload)))
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.headers(SECURITY_HEADERS)
    if (request.url.startsWith(API_PREFIX) || request.url === '/') reply.header('cache-control', 'no-store')
    done(null, payload)
  })
  // Each request is logged at debug level; at a higher level the hook is not even registered.
  if (log.isLevelEnabled('debug')) {
    app.addHook('onResponse', (request, reply, done) => {
      request.log.debug({ method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request')
      done()
    })
  }
  app.addHook('preClose', async () => {
    closingNow = true
    closing.abort()
  })
  app.addHook('onClose', async () => {
    await feed.close()
    credentials.close()
    stateFeed.close()
    await logFeed.close()
  })

  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` }))
  app.setErrorHandler((error: Error & { statusCode?: number; validation?: unknown; code?: string }, request, reply) => sendError(error, request, reply))

  app.get('/api/v1/openapi.json', { config: { access: 'viewer' }, schema: { hide: true } }, async () => app.swagger())
  sessionRoutes(app, ctx)
  dagRoutes(app, ctx)
  runRoutes(app, ctx)
  gridRoutes(app, ctx)
  eventRoutes(app, ctx)
  dagVersionRoutes(app, ctx)
  datasetRoutes(app, ctx, options.data)
  featureViewRoutes(app, ctx)
  modelRoutes(app, ctx, options.data?.dir)
  taskRoutes(app, ctx)
  logRoutes(app, ctx)
  const online = createOnlineStore(options.db, { rowCache: onlineRows })
  featureRoutes(app, ctx, online)
  adminRoutes(app, ctx)
  healthRoutes(app, ctx, metrics)
  pageRoutes(app, ctx)
  await app.ready()
  if (options.onlineFastPath !== false) {
    fastPath = createOnlineFastPath({
      db: options.db, tokens: tokenCache, online, masker: ctx.masker, log,
      headers: { ...SECURITY_HEADERS, 'cache-control': 'no-store' },
      closing: () => closingNow,
    })
  }
  return app
}

function sendError(error: Error & { statusCode?: number; validation?: unknown; code?: string }, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error.validation) return reply.code(400).send({ error: 'invalid_request', message: error.message })
  if (isConnectionError(error)) {
    request.log.warn({ error: error.message }, 'the database is unreachable')
    return reply.code(503).send({ error: 'unavailable', message: 'the database cannot be reached; try again shortly' })
  }
  const status = error.statusCode ?? 500
  if (status === 429) return reply.code(429).send({ error: 'rate_limited', message: error.message })
  if (status >= 400 && status < 500) return reply.code(status).send({ error: (error.code ?? 'bad_request').toLowerCase(), message: error.message })
  request.log.error({ err: error }, 'request failed')
  return reply.code(500).send({ error: 'internal', message: 'internal error (see the server log)' })
}

export interface StartWebOptions extends Omit<WebServerOptions, 'baseUrl'> {
  settings: Settings
  config?: LoadedConfig['config']
  /** Overrides CAIRN_PORT / web.port (0: any free port). */
  port?: number
}

export interface RunningWeb {
  app: FastifyInstance
  /** http://host:port/ as the server listens. */
  url: string
  close(): Promise<void>
}

/**
 * Starts the web server: port from `port`, else CAIRN_PORT, else cairn.yaml `web.port`, else 8080;
 * host from cairn.yaml `web.host`, else 127.0.0.1 (reachable from this machine only).
 */
export async function startWeb(options: StartWebOptions): Promise<RunningWeb> {
  const web = options.config?.web ?? {}
  const port = options.port ?? (options.settings.env.CAIRN_PORT ? options.settings.port : (web.port ?? options.settings.port))
  const host = web.host ?? '127.0.0.1'
  const baseUrl = web.base_url
  const trustProxy = options.trustProxy ?? web.trust_proxy === true
  const metricsAccess = options.metricsAccess ?? metricsAccessOf(web.metrics_auth)
  const { settings } = options
  const data = options.data ?? dataSettings(options.config ?? {}, { cwd: settings.cwd, home: settings.home, dagsFolder: settings.dagsFolder })
  const onlineCacheRows = options.onlineCacheRows ?? web.online_cache_rows
  const app = await createWebServer({ ...options, trustProxy, metricsAccess, data, ...(baseUrl ? { baseUrl } : {}), ...(onlineCacheRows === undefined ? {} : { onlineCacheRows }) })
  try {
    await app.listen({ port, host })
  } catch (error) {
    await app.close()
    throw error
  }
  const address = app.server.address()
  const actualPort = typeof address === 'object' && address ? address.port : port
  const shownHost = host.includes(':') ? `[${host}]` : host
  return { app, url: `http://${shownHost}:${actualPort}/`, close: () => app.close() }
}

/** cairn.yaml `web.metrics_auth`: false (open, the default), true (any role) or the least role needed; anything else fails closed. */
export function metricsAccessOf(value: unknown): Access {
  if (value === undefined || value === null || value === false) return 'public'
  if (value === true) return 'viewer'
  return isRole(value) ? value : 'admin'
}
