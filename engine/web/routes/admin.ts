/**
 * Admin only: users (`GET|POST /api/v1/users`, `POST /api/v1/users/{name}/disable|enable`) and API
 * tokens (`GET|POST /api/v1/tokens`, `POST /api/v1/tokens/{name}/revoke`). No answer ever holds a
 * token's secret except the one that creates it.
 */
import type { FastifyInstance } from 'fastify'
import type { WebContext } from '../context.ts'
import { parseDuration } from '../../time/duration.ts'
import { actingUser, describe } from '../auth/authenticate.ts'
import { MAX_PASSWORD_LENGTH, passwordProblem } from '../auth/passwords.ts'
import { NAME_PATTERN, ROLES } from '../auth/roles.ts'
import type { Role } from '../auth/roles.ts'
import { createToken, listTokens, revokeToken } from '../auth/tokens.ts'
import { createUser, getUser, hasOtherActiveAdmin, listUsers, setUserDisabled } from '../auth/users.ts'
import { tokenJson, userJson } from '../json.ts'
import { AUTH_ERRORS, SECURITY, errors, ref, time, timeOrNull } from '../schemas.ts'

const role = { type: 'string', enum: [...ROLES] } as const
const name = { type: 'string', pattern: NAME_PATTERN } as const

export function adminRoutes(app: FastifyInstance, ctx: WebContext): void {
  const { db } = ctx

  app.get('/api/v1/users', {
    config: { access: 'admin' },
    schema: { summary: 'Users', tags: ['admin'], security: SECURITY, response: { 200: { type: 'object', required: ['users'], properties: { users: { type: 'array', items: ref('User') } } }, ...errors(...AUTH_ERRORS) } },
    handler: async () => ({ users: (await listUsers(db)).map(userJson) }),
  })

  app.post<{ Body: { username: string; password: string; role: Role } }>('/api/v1/users', {
    config: { access: 'admin' },
    schema: {
      summary: 'Create a user',
      tags: ['admin'],
      security: SECURITY,
      body: { type: 'object', required: ['username', 'password', 'role'], properties: { username: name, password: { type: 'string', maxLength: MAX_PASSWORD_LENGTH }, role }, additionalProperties: false },
      response: { 201: ref('User'), ...errors(400, ...AUTH_ERRORS, 409) },
    },
    handler: async (request, reply) => {
      const { username, password, role: userRole } = request.body
      const problem = passwordProblem(password, username)
      if (problem) return reply.code(400).send({ error: 'invalid_password', message: problem })
      const user = await createUser(db, { username, password, role: userRole })
      if (!user) return reply.code(409).send({ error: 'exists', message: `user "${username}" already exists` })
      request.log.info({ username, role: userRole, by: describe(request.principal!) }, 'user created')
      return reply.code(201).send(userJson(user))
    },
  })

  app.post<{ Params: { name: string } }>('/api/v1/users/:name/disable', {
    config: { access: 'admin' },
    schema: {
      summary: "Disable a user: their sessions and the tokens they own stop working at once, open streams included",
      tags: ['admin'],
      security: SECURITY,
      params: { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 64 } } },
      response: { 200: ref('User'), ...errors(400, ...AUTH_ERRORS, 404, 409) },
    },
    handler: async (request, reply) => {
      const { name: username } = request.params
      const target = await getUser(db, username)
      if (!target) return reply.code(404).send({ error: 'not_found', message: `no user "${username}"` })
      // The command line can always make a new admin; the API cannot once no admin is left.
      if (target.role === 'admin' && !target.disabled && !(await hasOtherActiveAdmin(db, username))) {
        return reply.code(409).send({ error: 'last_admin', message: `${username} is the only active admin; make another admin first (or use the command line)` })
      }
      await setUserDisabled(db, username, true)
      request.log.info({ username, by: describe(request.principal!) }, 'user disabled')
      return userJson({ ...target, disabled: true })
    },
  })

  app.post<{ Params: { name: string } }>('/api/v1/users/:name/enable', {
    config: { access: 'admin' },
    schema: {
      summary: 'Enable a disabled user',
      tags: ['admin'],
      security: SECURITY,
      params: { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 64 } } },
      response: { 200: ref('User'), ...errors(400, ...AUTH_ERRORS, 404) },
    },
    handler: async (request, reply) => {
      const { name: username } = request.params
      if (!(await setUserDisabled(db, username, false))) return reply.code(404).send({ error: 'not_found', message: `no user "${username}"` })
      request.log.info({ username, by: describe(request.principal!) }, 'user enabled')
      return userJson((await getUser(db, username))!)
    },
  })

  app.get<{ Querystring: { all: boolean } }>('/api/v1/tokens', {
    config: { access: 'admin' },
    schema: {
      summary: 'API tokens (never the secrets): live ones, and with all=true revoked ones too',
      tags: ['admin'],
      security: SECURITY,
      querystring: { type: 'object', properties: { all: { type: 'boolean', default: false } }, additionalProperties: false },
      response: { 200: { type: 'object', required: ['tokens'], properties: { tokens: { type: 'array', items: ref('Token') } } }, ...errors(400, ...AUTH_ERRORS) },
    },
    handler: async (request) => {
      const now = ctx.now()
      return { tokens: (await listTokens(db, { all: request.query.all })).map((t) => tokenJson(t, now)) }
    },
  })

  app.post<{ Params: { name: string } }>('/api/v1/tokens/:name/revoke', {
    config: { access: 'admin' },
    schema: {
      summary: 'Revoke a token: it gets 401 at once, and its open streams end',
      tags: ['admin'],
      security: SECURITY,
      params: { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 64 } } },
      response: { 204: { type: 'null', description: 'revoked' }, ...errors(400, ...AUTH_ERRORS, 404) },
    },
    handler: async (request, reply) => {
      const { name: tokenName } = request.params
      if (!(await revokeToken(db, tokenName))) return reply.code(404).send({ error: 'not_found', message: `no live token named "${tokenName}"` })
      request.log.info({ name: tokenName, by: describe(request.principal!) }, 'token revoked')
      return reply.code(204).send()
    },
  })

  app.post<{ Body: { name: string; role: Role; expires_in?: string } }>('/api/v1/tokens', {
    config: { access: 'admin' },
    schema: {
      summary: 'Create an API token (shown only in this response)',
      tags: ['admin'],
      security: SECURITY,
      body: {
        type: 'object',
        required: ['name', 'role'],
        properties: { name, role, expires_in: { type: 'string', maxLength: 40, description: 'lifetime such as 12h or 90d; absent: never expires' } },
        additionalProperties: false,
      },
      response: {
        201: {
          type: 'object',
          required: ['name', 'role', 'token', 'created_at', 'expires_at', 'owner'],
          properties: {
            name: { type: 'string' },
            role,
            token: { type: 'string', description: 'send as Authorization: Bearer <token>; not stored, cannot be shown again' },
            created_at: time,
            expires_at: timeOrNull,
            owner: { type: ['string', 'null'], description: 'the user who made it; disabling that user stops the token' },
          },
        },
        ...errors(400, ...AUTH_ERRORS, 409),
      },
    },
    handler: async (request, reply) => {
      const { name: tokenName, role: tokenRole, expires_in: expiresIn } = request.body
      const expiresInMs = expiresIn === undefined ? undefined : parseDuration(expiresIn)
      if (expiresInMs !== undefined && expiresInMs <= 0) return reply.code(400).send({ error: 'invalid_request', message: 'expires_in must be a positive duration such as 12h or 90d' })
      if (expiresIn !== undefined && expiresInMs === undefined) return reply.code(400).send({ error: 'invalid_request', message: 'expires_in must be a duration such as 30m, 12h or 90d' })
      const principal = request.principal!
      const created = await createToken(db, { name: tokenName, role: tokenRole, createdBy: describe(principal), owner: actingUser(principal), ...(expiresInMs === undefined ? {} : { expiresInMs }) })
      if (!created) return reply.code(409).send({ error: 'exists', message: `a token named "${tokenName}" already exists` })
      request.log.info({ name: tokenName, role: tokenRole, by: describe(request.principal!) }, 'token created')
      return reply.code(201).send({
        name: created.row.name,
        role: created.row.role,
        token: created.token,
        created_at: created.row.createdAt.toISOString(),
        expires_at: created.row.expiresAt?.toISOString() ?? null,
        owner: created.row.owner,
      })
    },
  })
}
