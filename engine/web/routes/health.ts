/** Routes for monitoring: `GET /healthz` (open) and `GET /metrics` (open unless cairn.yaml web.metrics_auth says otherwise). */
import type { FastifyInstance } from 'fastify'
import type { QueryConfig } from 'pg'
import type { WebContext } from '../context.ts'
import type { WebMetrics } from '../metrics.ts'
import { SECURITY } from '../schemas.ts'

export function healthRoutes(app: FastifyInstance, ctx: WebContext, metrics: WebMetrics): void {
  app.get('/healthz', {
    config: { access: 'public' },
    schema: {
      summary: 'Healthy when the database answers SELECT 1 in time',
      tags: ['monitoring'],
      response: {
        200: { type: 'object', properties: { status: { type: 'string', const: 'ok' } } },
        503: { type: 'object', properties: { status: { type: 'string', const: 'unavailable' }, message: { type: 'string' } } },
      },
    },
    handler: async (_request, reply) => {
      const problem = await databaseProblem(ctx)
      if (problem === undefined) return { status: 'ok' }
      return reply.code(503).send({ status: 'unavailable', message: problem })
    },
  })

  app.get('/metrics', {
    config: { access: ctx.metricsAccess },
    schema: {
      summary: 'Prometheus metrics (text format)',
      tags: ['monitoring'],
      produces: ['text/plain'],
      ...(ctx.metricsAccess === 'public' ? {} : { security: SECURITY, description: `Needs a bearer token (or session) with the ${ctx.metricsAccess} role or higher (cairn.yaml web.metrics_auth).` }),
    },
    handler: async (request, reply) => {
      let text: string
      try {
        text = await metrics.render()
      } catch (error) {
        request.log.warn({ err: error }, 'metrics: the database did not answer')
        return reply.code(503).type('text/plain; charset=utf-8').send('# the database did not answer\n')
      }
      return reply.type(metrics.contentType).send(ctx.masker()(text))
    },
  })
}

/** undefined when `SELECT 1` answers within the timeout, else why not. */
async function databaseProblem(ctx: WebContext): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`the database did not answer within ${ctx.healthTimeoutMs} ms`), ctx.healthTimeoutMs)
  })
  // query_timeout is honoured per query by pg, though its types only list it for the client.
  const query = ctx.db.pool.query({ text: 'SELECT 1', query_timeout: ctx.healthTimeoutMs } as QueryConfig).then(
    () => undefined,
    (error: unknown) => `the database did not answer: ${error instanceof Error ? error.message : String(error)}`,
  )
  try {
    return await Promise.race([query, timeout])
  } finally {
    clearTimeout(timer)
  }
}
