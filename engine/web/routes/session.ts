/**
 * `POST /api/v1/login` (open; limited per client address, and backing off per user name and address:
 * auth/login-throttle.ts), `POST /api/v1/logout`,
 * `GET /api/v1/session` (who am I, and the CSRF token a page needs for state-changing requests).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { WebContext } from '../context.ts'
import { MAX_PASSWORD_LENGTH } from '../auth/passwords.ts'
import { ROLES } from '../auth/roles.ts'
import { SESSION_COOKIE, createSession, csrfTokenFor, deleteSession } from '../auth/sessions.ts'
import { checkLogin } from '../auth/users.ts'
import { sessionCookie } from '../auth/authenticate.ts'
import { loginSucceeded, reserveLoginAttempt } from '../auth/login-throttle.ts'
import { AUTH_ERRORS, SECURITY, errors, time, timeOrNull } from '../schemas.ts'

export function sessionRoutes(app: FastifyInstance, ctx: WebContext): void {
  const { db } = ctx
  const cookieOptions = (request: FastifyRequest) => ({ httpOnly: true, sameSite: 'strict' as const, secure: ctx.secureCookies || request.protocol === 'https', path: '/' })

  app.post<{ Body: { username: string; password: string } }>('/api/v1/login', {
    config: { access: 'public', rateLimit: { max: ctx.login.perIp, timeWindow: ctx.login.windowMs, keyGenerator: (request) => `login-ip:${request.ip}` } },
    schema: {
      summary: 'Log in: sets the session cookie and returns the CSRF token',
      description:
        `At most ${ctx.login.perIp} attempts per client address in ${ctx.login.windowMs / 1000} s. After ${ctx.login.perUser} failures for one user name from one address, ` +
        `that address waits before its next attempt for that name (${ctx.login.backoffMs / 1000} s, doubling with each failure, at most ${ctx.login.maxBackoffMs / 1000} s); ` +
        `after ${ctx.login.perUserAnywhere} failures for a name from all addresses, addresses that name never logged in from wait the same way. 429 with Retry-After when refused.`,
      tags: ['session'],
      body: {
        type: 'object',
        required: ['username', 'password'],
        properties: { username: { type: 'string', minLength: 1, maxLength: 64 }, password: { type: 'string', minLength: 1, maxLength: MAX_PASSWORD_LENGTH } },
        additionalProperties: false,
      },
      response: {
        200: {
          type: 'object',
          required: ['username', 'role', 'csrf_token', 'expires_at'],
          properties: { username: { type: 'string' }, role: { type: 'string', enum: [...ROLES] }, csrf_token: { type: 'string', description: 'send it as X-CSRF-Token on POST requests' }, expires_at: time },
        },
        ...errors(400, 401, 429, 503),
      },
    },
    handler: async (request, reply) => {
      const { username, password } = request.body
      const verdict = await reserveLoginAttempt(db, username, request.ip, ctx.login)
      if (!verdict.allowed) return tooMany(reply, Math.ceil(verdict.retryAfterMs / 1000))
      const user = await checkLogin(db, username, password)
      if (!user) return reply.code(401).send({ error: 'invalid_credentials', message: 'wrong user name or password' })
      await loginSucceeded(db, username, request.ip)
      const previous = sessionCookie(request)
      if (previous) await deleteSession(db, previous)
      const { sessionId, expiresAt } = await createSession(db, user.username, ctx.sessionTtlMs)
      reply.setCookie(SESSION_COOKIE, sessionId, { ...cookieOptions(request), expires: expiresAt })
      request.log.info({ username: user.username }, 'logged in')
      return { username: user.username, role: user.role, csrf_token: csrfTokenFor(sessionId), expires_at: expiresAt.toISOString() }
    },
  })

  app.post('/api/v1/logout', {
    config: { access: 'viewer' },
    schema: { summary: 'End the browser session', tags: ['session'], security: SECURITY, response: { 204: { type: 'null', description: 'logged out' }, ...errors(...AUTH_ERRORS) } },
    handler: async (request, reply) => {
      const principal = request.principal!
      if (principal.kind === 'session') await deleteSession(db, principal.sessionId)
      reply.clearCookie(SESSION_COOKIE, cookieOptions(request))
      return reply.code(204).send()
    },
  })

  app.get('/api/v1/session', {
    config: { access: 'viewer' },
    schema: {
      summary: 'Who is asking: user or token, role, and (for a browser session) the CSRF token',
      tags: ['session'],
      security: SECURITY,
      response: {
        200: {
          type: 'object',
          required: ['kind', 'name', 'role', 'csrf_token', 'expires_at'],
          properties: {
            kind: { type: 'string', enum: ['session', 'token'] },
            name: { type: 'string', description: 'user name or token name' },
            role: { type: 'string', enum: [...ROLES] },
            csrf_token: { type: ['string', 'null'] },
            expires_at: timeOrNull,
          },
        },
        ...errors(...AUTH_ERRORS),
      },
    },
    handler: async (request) => {
      const p = request.principal!
      return p.kind === 'session'
        ? { kind: p.kind, name: p.username, role: p.role, csrf_token: p.csrfToken, expires_at: p.expiresAt.toISOString() }
        : { kind: p.kind, name: p.name, role: p.role, csrf_token: null, expires_at: null }
    },
  })
}

function tooMany(reply: FastifyReply, retryAfterSeconds: number): FastifyReply {
  return reply
    .code(429)
    .header('retry-after', String(Math.max(1, retryAfterSeconds)))
    .send({ error: 'rate_limited', message: `too many login attempts; try again in ${Math.max(1, retryAfterSeconds)} s` })
}
