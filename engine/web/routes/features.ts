/**
 * Online feature lookups (SPEC section 7): `GET /api/v1/features/{view}/online?KEY_COLUMN=VALUE...`
 * for one entity and `POST /api/v1/features/{view}/online` with `{"entities": [{...}, ...]}` for many.
 * Key values arrive as strings (query) or JSON values and are matched against the entity column's
 * type (engine/data/entity-key.ts). A known view always answers 200: an entity without an online row
 * has `found: false` and null features (as Feast's online read does), a row older than the view's
 * ttl has its features null and `expired: true`.
 */
import type { FastifyInstance } from 'fastify'
import { createOnlineStore } from '../../data/online-store.ts'
import type { OnlineReadResult, OnlineStore } from '../../data/online-store.ts'
import type { WebContext } from '../context.ts'
import { AUTH_ERRORS, SECURITY, errors } from '../schemas.ts'

/** Who may look up online features (the fast path of online-fast-path.ts checks the same role). */
export const ONLINE_ACCESS = 'viewer' as const

/** Entities one POST may ask for. */
export const MAX_ONLINE_ENTITIES = 1000

const viewParams = { type: 'object', required: ['view'], properties: { view: { type: 'string', maxLength: 64 } } } as const

const onlineValue = {
  type: 'object',
  required: ['entity', 'features', 'feature_timestamp', 'found', 'expired'],
  properties: {
    entity: { type: 'object', additionalProperties: true, description: 'the entity key columns (stored types when found)' },
    features: { type: 'object', additionalProperties: true, description: "every feature of the view's current definition; null when unknown or older than ttl" },
    feature_timestamp: { type: ['string', 'null'], format: 'date-time', description: 'the interval end the row was materialized for' },
    found: { type: 'boolean', description: 'the online store holds a row for the entity' },
    expired: { type: 'boolean', description: "the row is older than the view's ttl, so its features are null" },
  },
} as const

/** `online`: the store the server's fast path (online-fast-path.ts) shares, so both keep the same definitions. */
export function featureRoutes(app: FastifyInstance, ctx: WebContext, online: OnlineStore = createOnlineStore(ctx.db, { rowCache: ctx.onlineRows })): void {
  const answer = (result: OnlineReadResult, reply: { code(n: number): { send(body: unknown): unknown } }) => {
    if (result.ok) return undefined
    return reply.code(result.reason === 'unknown_view' ? 404 : 400).send({ error: result.reason === 'unknown_view' ? 'not_found' : 'bad_request', message: result.message })
  }
  const one = (result: OnlineReadResult, reply: { code(n: number): { send(body: unknown): unknown } }) => answer(result, reply) ?? (result as OnlineReadResult & { ok: true }).values[0]

  app.get<{ Params: { view: string }; Querystring: Record<string, string | string[]> }>('/api/v1/features/:view/online', {
    config: { access: ONLINE_ACCESS },
    schema: {
      summary: 'Online feature values of one entity',
      description: 'One query parameter per entity column of the view, e.g. `?user_id=u1`.',
      tags: ['features'],
      security: SECURITY,
      params: viewParams,
      querystring: { type: 'object', additionalProperties: { type: 'string', maxLength: 1000 } },
      response: { 200: onlineValue, ...errors(400, ...AUTH_ERRORS, 404) },
    },
    // Not an async function: an entity read a moment ago is answered in the same tick (the store answers
    // synchronously from memory), without a promise.
    handler: (request, reply) => {
      const result = online.read(request.params.view, [request.query])
      return result instanceof Promise ? result.then((r) => one(r, reply)) : one(result, reply)
    },
  })

  app.post<{ Params: { view: string }; Body: { entities: Record<string, unknown>[] } }>('/api/v1/features/:view/online', {
    config: { access: ONLINE_ACCESS },
    schema: {
      summary: 'Online feature values of several entities',
      description: `Up to ${MAX_ONLINE_ENTITIES} entities, each an object with the view's entity columns; results in the same order.`,
      tags: ['features'],
      security: SECURITY,
      params: viewParams,
      body: {
        type: 'object',
        required: ['entities'],
        additionalProperties: false,
        properties: {
          entities: {
            type: 'array',
            maxItems: MAX_ONLINE_ENTITIES,
            items: { type: 'object', description: 'entity column -> value (a string, number, boolean or null)' },
          },
        },
      },
      response: {
        200: { type: 'object', required: ['view', 'results'], properties: { view: { type: 'string' }, results: { type: 'array', items: onlineValue } } },
        ...errors(400, ...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const result = await online.read(request.params.view, request.body.entities)
      return answer(result, reply) ?? { view: request.params.view, results: (result as OnlineReadResult & { ok: true }).values }
    },
  })
}
