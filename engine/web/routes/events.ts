/**
 * `GET /api/v1/events?dag&run`: live state changes as server-sent events, for pages that update
 * without reloading. Without filters every change is sent; `dag` and `run` narrow it. Events:
 *   event: ready   data: {}   the stream is listening; re-read what you show, changes follow
 *   event: states  data: {"changes": [{"run_id", "dag_id", "task_id", "state"}]}   (task_id null: the run itself)
 *   event: dags    data: {}   a DAG was added, removed, paused, unpaused or changed, or import errors changed
 * Only the latest state of each run and task instance in a batch is sent.
 */
import type { FastifyInstance } from 'fastify'
import type { WebContext } from '../context.ts'
import { AUTH_ERRORS, SECURITY, errors } from '../schemas.ts'
import { openEventStream } from '../sse.ts'
import type { FeedEvent } from '../state-feed.ts'

type Query = { dag?: string; run?: string }

export function eventRoutes(app: FastifyInstance, ctx: WebContext): void {
  app.get<{ Querystring: Query }>('/api/v1/events', {
    config: { access: 'viewer' },
    schema: {
      summary: 'Live state changes of runs and task instances (server-sent events)',
      description: 'Events `ready`, `states` ({changes: [{run_id, dag_id, task_id, state}]}) and `dags`. `dag` and `run` narrow the changes sent.',
      tags: ['runs'],
      security: SECURITY,
      querystring: {
        type: 'object',
        properties: { dag: { type: 'string', maxLength: 200 }, run: { type: 'string', maxLength: 300 } },
        additionalProperties: false,
      },
      response: { 200: { description: 'text/event-stream', type: 'string' }, ...errors(400, ...AUTH_ERRORS) },
    },
    handler: async (request, reply) => {
      const { dag, run } = request.query
      const out = openEventStream(ctx, reply)
      const unsubscribe = ctx.stateFeed.subscribe((event: FeedEvent) => {
        if (event.kind === 'dags') {
          void out.event('dags', {})
          return
        }
        const latest = new Map<string, { run_id: string; dag_id: string; task_id: string | null; state: string }>()
        for (const c of event.changes) {
          if (dag !== undefined && c.dagId !== dag) continue
          if (run !== undefined && c.runId !== run) continue
          latest.set(`${c.runId}\t${c.taskId ?? ''}`, { run_id: c.runId, dag_id: c.dagId, task_id: c.taskId, state: c.state })
        }
        if (latest.size > 0) void out.event('states', { changes: [...latest.values()] })
      })
      await out.event('ready', {})
      await new Promise<void>((resolve) => {
        if (out.closed.aborted) resolve()
        else out.closed.addEventListener('abort', () => resolve(), { once: true })
      })
      unsubscribe()
      out.end()
    },
  })
}
