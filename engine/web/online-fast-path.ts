/**
 * The online lookup `GET /api/v1/features/{view}/online?KEY=VALUE...` answered from memory before
 * Fastify sees the request (its routing, hook chain, schema checks and serializer cost about as much
 * as the whole lookup once the token, the view's definition and the row are in memory).
 *
 * It answers only a request it can answer exactly as the route would, and hands every other one to
 * Fastify untouched (`false`): the route then runs with all its hooks, and its answer may fill the
 * caches for the next request. It answers when all of these hold:
 * - method GET, path `/api/v1/features/{view}/online` spelled exactly (view of letters, digits, `_`
 *   and `-`, at most 64), a query of distinct `KEY=VALUE` pairs with nothing to decode (no `%` or
 *   `+`) and values of at most 1000 characters (the route's querystring schema);
 * - `Authorization: Bearer <token>` whose token the token cache verified a moment ago (token-cache.ts:
 *   same expiry, revocation notices and live-feed rules as the auth hook; a request judged by its
 *   Authorization header alone, cookies ignored, as in the hook) and whose role allows the route's
 *   access (`ONLINE_ACCESS`, viewer);
 * - the online store answers the entity from memory (online-store.ts `peek`: the view's kept
 *   definition, the entity's cached row or cached absence; the ttl rule applied now);
 * - the server is not closing.
 *
 * What the answer gets, as the route's would: status 200, the JSON body masked with the secrets the
 * server knows (secret-masking.ts), `content-type: application/json; charset=utf-8`, the security
 * headers and `cache-control: no-store` of server.ts, and the debug-level request log line when the
 * server logs at debug level. No rate limit applies to the route. The body is made once per cached
 * row within its ttl and kept with it while the masker stays the same (online-store.ts `peek`):
 * masking and serializing were among the path's larger own costs in a profile; a kept body is its JSON bytes (about
 * 250 bytes per row asked, in Node's shared buffer pool).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { OnlineStore, OnlineValue } from '../data/online-store.ts'
import type { Masker } from '../secrets/mask.ts'
import type { Db } from '../store/db.ts'
import { cachedBearerPrincipal } from './auth/authenticate.ts'
import { roleAllows } from './auth/roles.ts'
import type { TokenCache } from './auth/token-cache.ts'
import { ONLINE_ACCESS } from './routes/features.ts'

const PREFIX = '/api/v1/features/'
const SUFFIX = '/online'
const VIEW = /^[A-Za-z0-9_-]{1,64}$/
/** The longest query value the route's querystring schema accepts. */
const MAX_VALUE = 1000

export interface OnlineFastPathOptions {
  db: Db
  tokens: TokenCache
  online: OnlineStore
  masker: () => Masker
  /** The headers every answer of server.ts gets (security headers, no-store for the API). */
  headers: Readonly<Record<string, string>>
  log: Logger
  /** True once the server is closing (Fastify then answers 503 to new requests). */
  closing: () => boolean
}

/** Answers the request and returns true, or returns false having touched nothing. */
export type OnlineFastPath = (request: IncomingMessage, response: ServerResponse) => boolean

export function createOnlineFastPath(options: OnlineFastPathOptions): OnlineFastPath {
  const { db, tokens, online, masker, log } = options
  const debug = log.isLevelEnabled('debug')
  // The headers as one flat list, content-length last (its value is filled in per answer).
  const headers: (string | number)[] = [...Object.entries(options.headers).flat(), 'content-type', 'application/json; charset=utf-8', 'content-length', 0]
  const lengthAt = headers.length - 1
  return (request, response) => {
    if (request.method !== 'GET') return false
    const url = request.url
    if (url === undefined || !url.startsWith(PREFIX)) return false
    const query = url.indexOf('?')
    if (query < 0) return false
    const path = url.slice(PREFIX.length, query)
    if (!path.endsWith(SUFFIX)) return false
    const view = path.slice(0, path.length - SUFFIX.length)
    if (!VIEW.test(view)) return false
    const entity = parseQuery(url, query + 1)
    if (entity === undefined || options.closing()) return false
    const principal = cachedBearerPrincipal(db, request.headers.authorization, tokens)
    if (!principal || !roleAllows(principal.role, ONLINE_ACCESS)) return false
    const body = online.peek(view, entity, masker(), renderBody)
    if (body === undefined) return false
    const started = debug ? performance.now() : 0
    const list = headers.slice()
    list[lengthAt] = body.length
    response.writeHead(200, list as string[])
    response.end(body)
    if (debug) log.debug({ method: 'GET', url, status: 200, ms: Math.round(performance.now() - started) }, 'request')
    return true
  }
}

/** The answer's body: the value masked with the secrets the server knows, as JSON bytes. */
const renderBody = (value: OnlineValue, masker: Masker): Buffer => Buffer.from(JSON.stringify(masker.deep(value)))

/**
 * `KEY=VALUE&...` from `start` to the end of `url` as an object without a prototype (as Fastify's
 * parser makes it); undefined when anything would need decoding or judging (a `%` or `+`, an empty
 * pair or key, a pair without `=`, a repeated key, an overlong value): Fastify then parses it.
 */
function parseQuery(url: string, start: number): Record<string, string> | undefined {
  if (start >= url.length) return undefined
  const entity = Object.create(null) as Record<string, string>
  let at = start
  while (at <= url.length) {
    let end = url.indexOf('&', at)
    if (end < 0) end = url.length
    const eq = url.indexOf('=', at)
    if (eq <= at || eq >= end) return undefined
    const key = url.slice(at, eq)
    const value = url.slice(eq + 1, end)
    if (value.length > MAX_VALUE || key in entity) return undefined
    entity[key] = value
    at = end + 1
  }
  for (let i = start; i < url.length; i++) {
    const c = url.charCodeAt(i)
    if (c === 37 /* % */ || c === 43 /* + */) return undefined
  }
  return entity
}
