/** `GET /api/v1/runs/{run}/tasks`: the task instances of a run, upstream before downstream. */
import type { FastifyInstance } from 'fastify'
import { dependencyOrder } from '../../graph/task-graph.ts'
import { getDagVersion } from '../../store/dags.ts'
import { getRun, listTaskInstances } from '../../store/runs.ts'
import type { WebContext } from '../context.ts'
import { runJson, taskInstanceJson } from '../json.ts'
import { AUTH_ERRORS, SECURITY, errors, ref, runParams } from '../schemas.ts'

export function taskRoutes(app: FastifyInstance, ctx: WebContext): void {
  const { db } = ctx
  app.get<{ Params: { run: string } }>('/api/v1/runs/:run/tasks', {
    config: { access: 'viewer' },
    schema: {
      summary: 'Task instances of a run, in dependency order',
      tags: ['runs'],
      security: SECURITY,
      params: runParams,
      response: {
        200: { type: 'object', required: ['run', 'tasks'], properties: { run: ref('Run'), tasks: { type: 'array', items: ref('TaskInstance') } } },
        ...errors(...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const run = await getRun(db, request.params.run)
      if (!run) return reply.code(404).send({ error: 'not_found', message: `no run "${request.params.run}"` })
      const [spec, instances] = await Promise.all([getDagVersion(db, run.versionId), listTaskInstances(db, run.runId)])
      const byId = new Map(instances.map((ti) => [ti.taskId, ti]))
      const ordered = dependencyOrder(spec.tasks).flatMap((task) => {
        const ti = byId.get(task.id)
        byId.delete(task.id)
        return ti ? [taskInstanceJson(ti, task)] : []
      })
      // Never hide a row the spec does not explain.
      for (const ti of byId.values()) ordered.push(taskInstanceJson(ti, undefined))
      return { run: runJson(run), tasks: ordered }
    },
  })
}
