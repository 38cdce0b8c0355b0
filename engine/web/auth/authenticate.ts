/**
 * Who is asking, and may they: one `onRequest` hook for every request the server receives, run after
 * Fastify has matched the route (so it judges the route that will actually answer, whatever spelling
 * of the path reached it). Deny by default:
 * - a route is open only when its config says `access: 'public'`;
 * - a route without `access` needs admin, so a forgotten declaration fails closed;
 * - a request that matches no route needs a login too (401 before 404: nothing to probe).
 *
 * Credentials: `Authorization: Bearer <token>` (an API token), else the session cookie. A request that
 * sends an Authorization header is judged by it alone. Cookie sessions must send the session's CSRF
 * token in `X-CSRF-Token` on every state-changing method; bearer requests need none (a browser never
 * adds that header to a cross-site request on its own).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Db } from '../../store/db.ts'
import { roleAllows } from './roles.ts'
import type { Role } from './roles.ts'
import { SESSION_COOKIE, csrfTokenFor, findSession } from './sessions.ts'
import { findTokenByHash } from './tokens.ts'
import type { TokenRow } from './tokens.ts'
import type { TokenCache } from './token-cache.ts'
import { sameSecret, sha256Base64 } from './secret-ids.ts'

export type Access = 'public' | Role

export type Principal =
  | { kind: 'session'; username: string; role: Role; sessionId: string; csrfToken: string; expiresAt: Date }
  | { kind: 'token'; name: string; tokenId: number; role: Role; owner: string | null }

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route (see authenticate.ts). @default "admin" */
    access?: Access
  }
  interface FastifyRequest {
    principal: Principal | null
  }
}

/** What a browser sees on a page path without a session (the API answers JSON instead). */
const LOGIN_NEEDED = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cairn: log in</title></head>
<body><h1>cairn</h1><p>Log in first: <a href="/login">/login</a>. Scripts use an API token
(<code>npx cairn tokens create NAME --role R</code>) sent as <code>Authorization: Bearer &lt;token&gt;</code>.</p></body></html>
`

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
const BEARER = /^Bearer[ \t]+([A-Za-z0-9._~+/=-]+)[ \t]*$/i

/**
 * Finds the principal of a request; undefined when it carries no credentials that are valid now. A
 * bearer token verified a moment ago may come from `tokens` (see token-cache.ts for why that is safe).
 */
export async function identify(db: Db, request: FastifyRequest, tokens?: TokenCache): Promise<Principal | undefined> {
  // A request that sends an Authorization header is judged by it alone.
  const bearer = bearerPrincipal(db, request, tokens)
  if (bearer !== NONE) return bearer
  const sessionId = sessionCookie(request)
  if (!sessionId || sessionId.length > 256) return undefined
  const session = await findSession(db, sessionId)
  if (!session) return undefined
  return { kind: 'session', username: session.username, role: session.role, sessionId, csrfToken: csrfTokenFor(sessionId), expiresAt: session.expiresAt }
}

/** No credentials at all (a bearer header that is not a well-formed token counts as sent, and wrong). */
const NONE = Symbol('no bearer token')

/**
 * The principal of a request that sends an Authorization header: synchronously when its token is in
 * `tokens`, else a promise; NONE when the request sends no Authorization header (then the session
 * cookie decides).
 */
function bearerPrincipal(db: Db, request: FastifyRequest, tokens: TokenCache | undefined): Principal | undefined | Promise<Principal | undefined> | typeof NONE {
  const header = request.headers.authorization
  if (header === undefined) return NONE
  const key = bearerDigest(header)
  if (key === undefined) return undefined
  const check = tokenLookup(db, key)
  const found = tokens ? tokens.resolve(key, check) : check()
  return found instanceof Promise ? found.then(principalOf) : principalOf(found)
}

/** The digest the database keeps of a `Bearer <token>` header's token; undefined for a malformed header. */
function bearerDigest(header: string): string | undefined {
  const match = BEARER.exec(header)
  return match ? sha256Base64(match[1]!) : undefined
}

/** Reads the token row of a digest from the database (what the token cache calls to check one). */
function tokenLookup(db: Db, key: string): () => Promise<TokenRow | undefined> {
  return () => findTokenByHash(db, Buffer.from(key, 'base64'))
}

/**
 * The principal of an `Authorization` header value when its token was verified a moment ago (the
 * token cache answers from memory, same rules as the hook: expiry, revocation notices, a live feed);
 * undefined in every other case, without asking the database: no header, a malformed one, a token not
 * in the cache. Used by paths that answer only from memory and leave everything else to the hook.
 */
export function cachedBearerPrincipal(db: Db, header: string | undefined, tokens: TokenCache): Principal | undefined {
  const key = header === undefined ? undefined : bearerDigest(header)
  return key === undefined ? undefined : principalOf(tokens.peek(key, tokenLookup(db, key)))
}

/** The session cookie's value (cookies are parsed only for requests that need them). */
export function sessionCookie(request: FastifyRequest): string | undefined {
  if (request.cookies) return request.cookies[SESSION_COOKIE]
  const header = request.headers.cookie
  return header ? request.server.parseCookie(header)[SESSION_COOKIE] : undefined
}

/** One principal object per token row (rows are replaced, never changed, when a token is checked again). */
const principals = new WeakMap<TokenRow, Principal>()
function principalOf(token: TokenRow | undefined): Principal | undefined {
  if (!token) return undefined
  let principal = principals.get(token)
  if (!principal) principals.set(token, (principal = Object.freeze({ kind: 'token', name: token.name, tokenId: token.tokenId, role: token.role, owner: token.owner })))
  return principal
}

/**
 * The onRequest hook. It is a callback hook, not an async one, so that a bearer request whose token
 * is cached is judged without a promise or a database round trip.
 */
export function createAuthHook(db: Db, tokens?: TokenCache) {
  return function authenticate(request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
    request.principal = null
    const access: Access = request.is404 ? 'viewer' : (request.routeOptions.config.access ?? 'admin')
    if (access === 'public') return done()
    const bearer = bearerPrincipal(db, request, tokens)
    if (bearer === NONE) {
      identify(db, request, tokens).then((principal) => admit(request, reply, access, principal, done), done)
    } else if (bearer instanceof Promise) {
      bearer.then((principal) => admit(request, reply, access, principal, done), done)
    } else {
      admit(request, reply, access, bearer, done)
    }
  }
}

/** Lets the request through (done()) or answers it (401, 403, CSRF). */
function admit(request: FastifyRequest, reply: FastifyReply, access: Role, principal: Principal | undefined, done: () => void): void {
  if (!principal) {
    reply.header('www-authenticate', 'Bearer realm="cairn"')
    if (!request.url.startsWith('/api/') && request.headers.accept?.includes('text/html')) {
      reply.code(401).type('text/html; charset=utf-8').send(LOGIN_NEEDED)
      return
    }
    reply.code(401).send({ error: 'unauthorized', message: 'log in (POST /api/v1/login) or send Authorization: Bearer <token>' })
    return
  }
  request.principal = principal
  if (!roleAllows(principal.role, access)) {
    reply.code(403).send({ error: 'forbidden', message: `this needs the ${access} role; ${describe(principal)} has ${principal.role}` })
    return
  }
  if (principal.kind === 'session' && !SAFE_METHODS.has(request.method)) {
    const sent = request.headers['x-csrf-token']
    if (typeof sent !== 'string' || !sameSecret(sent, principal.csrfToken)) {
      reply.code(403).send({ error: 'csrf', message: 'a browser session must send its CSRF token (from login) in the X-CSRF-Token header' })
      return
    }
  }
  done()
}

/** The user a principal acts for: a session's user, a token's owner (null for a token made on the command line). */
export function actingUser(principal: Principal): string | null {
  return principal.kind === 'session' ? principal.username : principal.owner
}

export function describe(principal: Principal): string {
  return principal.kind === 'session' ? `user ${principal.username}` : `token ${principal.name}`
}
