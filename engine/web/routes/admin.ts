/** Admin only: `GET /api/v1/users`, `POST /api/v1/users`, `POST /api/v1/tokens`. */
import type { FastifyInstance } from 'fastify'
import type { WebContext } from '../context.ts'
import { describe } from '../auth/authenticate.ts'
import { MAX_PASSWORD_LENGTH, passwordProblem } from '../auth/passwords.ts'
import { NAME_PATTERN, ROLES } from '../auth/roles.ts'
import type { Role } from '../auth/roles.ts'
import { createToken } from '../auth/tokens.ts'
import { createUser, listUsers } from '../auth/users.ts'
import { userJson } from '../json.ts'
import { AUTH_ERRORS, SECURITY, errors, ref, time } from '../schemas.ts'

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
      const problem = passwordProblem(password)
      if (problem) return reply.code(400).send({ error: 'invalid_password', message: problem })
      const user = await createUser(db, { username, password, role: userRole })
      if (!user) return reply.code(409).send({ error: 'exists', message: `user "${username}" already exists` })
      request.log.info({ username, role: userRole, by: describe(request.principal!) }, 'user created')
      return reply.code(201).send(userJson(user))
    },
  })

  app.post<{ Body: { name: string; role: Role } }>('/api/v1/tokens', {
    config: { access: 'admin' },
    schema: {
      summary: 'Create an API token (shown only in this response)',
      tags: ['admin'],
      security: SECURITY,
      body: { type: 'object', required: ['name', 'role'], properties: { name, role }, additionalProperties: false },
      response: {
        201: {
          type: 'object',
          required: ['name', 'role', 'token', 'created_at'],
          properties: { name: { type: 'string' }, role, token: { type: 'string', description: 'send as Authorization: Bearer <token>; not stored, cannot be shown again' }, created_at: time },
        },
        ...errors(400, ...AUTH_ERRORS, 409),
      },
    },
    handler: async (request, reply) => {
      const { name: tokenName, role: tokenRole } = request.body
      const created = await createToken(db, { name: tokenName, role: tokenRole, createdBy: describe(request.principal!) })
      if (!created) return reply.code(409).send({ error: 'exists', message: `a token named "${tokenName}" already exists` })
      request.log.info({ name: tokenName, role: tokenRole, by: describe(request.principal!) }, 'token created')
      return reply.code(201).send({ name: created.row.name, role: created.row.role, token: created.token, created_at: created.row.createdAt.toISOString() })
    },
  })
}
