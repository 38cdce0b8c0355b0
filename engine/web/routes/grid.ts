/**
 * `GET /api/v1/dags/{dag}/grid`: a page of runs (newest first, same cursor as the runs route) with the
 * state of every task instance, in two indexed queries whatever the number of runs in the database.
 * Rows are the tasks of the DAG's current version in dependency order, then any task that only older
 * versions had (a grid never hides a cell it was given).
 */
import type { FastifyInstance } from 'fastify'
import { TASK_STATE_LIST } from '../../state/states.ts'
import { dependencyOrder } from '../../graph/task-graph.ts'
import { getDagVersion } from '../../store/dags.ts'
import { taskStatesOfRuns } from '../../store/grid.ts'
import type { WebContext } from '../context.ts'
import { runJson } from '../json.ts'
import { AUTH_ERRORS, SECURITY, dagParams, errors, ref } from '../schemas.ts'
import { pageOfRuns, runsPageQuery } from './runs.ts'
import type { RunsPageQuery } from './runs.ts'

const MAX_GRID_PAGE = 200

const cell = {
  type: 'object',
  required: ['state', 'attempts'],
  properties: { state: { type: 'string', enum: [...TASK_STATE_LIST] }, attempts: { type: 'integer' } },
} as const

export function gridRoutes(app: FastifyInstance, ctx: WebContext): void {
  const { db } = ctx

  app.get<{ Params: { dag: string }; Querystring: RunsPageQuery }>('/api/v1/dags/:dag/grid', {
    config: { access: 'viewer' },
    schema: {
      summary: 'Runs by tasks: a page of runs with the state of each task instance',
      description: 'Paginated like `/dags/{dag}/runs`: pass `next_cursor` as `cursor` for older runs.',
      tags: ['runs'],
      security: SECURITY,
      params: dagParams,
      querystring: runsPageQuery(MAX_GRID_PAGE, 25),
      response: {
        200: {
          type: 'object',
          required: ['tasks', 'runs', 'next_cursor'],
          properties: {
            tasks: {
              type: 'array',
              description: 'grid rows, upstream before downstream',
              items: { type: 'object', required: ['task_id', 'depends_on'], properties: { task_id: { type: 'string' }, depends_on: { type: 'array', items: { type: 'string' } } } },
            },
            runs: {
              type: 'array',
              items: {
                allOf: [ref('Run')],
                type: 'object',
                required: ['tasks'],
                properties: { tasks: { type: 'object', description: 'task id -> its instance in this run', additionalProperties: cell } },
              },
            },
            next_cursor: { type: ['string', 'null'] },
          },
        },
        ...errors(400, ...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const { dag } = request.params
      const page = await pageOfRuns(ctx, dag, request.query)
      if (!page.ok) return reply.code(page.status).send({ error: page.error, message: page.message })
      const [spec, cells] = await Promise.all([
        page.dag.versionId !== null ? getDagVersion(db, page.dag.versionId) : undefined,
        taskStatesOfRuns(db, page.runs.map((r) => r.runId)),
      ])
      const byRun = new Map<string, Record<string, { state: string; attempts: number }>>()
      for (const c of cells) {
        let row = byRun.get(c.runId)
        if (!row) byRun.set(c.runId, (row = {}))
        row[c.taskId] = { state: c.state, attempts: c.attempt }
      }
      const tasks = spec ? dependencyOrder(spec.tasks).map((t) => ({ task_id: t.id, depends_on: [...t.dependsOn] })) : []
      const known = new Set(tasks.map((t) => t.task_id))
      for (const c of cells) {
        if (known.has(c.taskId)) continue
        known.add(c.taskId)
        tasks.push({ task_id: c.taskId, depends_on: [] })
      }
      return { tasks, runs: page.runs.map((r) => ({ ...runJson(r), tasks: byRun.get(r.runId) ?? {} })), next_cursor: page.nextCursor }
    },
  })
}
