/**
 * `GET /api/v1/runs/{run}/tasks`: the task instances of a run, upstream before downstream.
 * `POST /api/v1/runs/{run}/tasks/{task}/mark`: mark a finished task instance success or failed.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { markTask } from '../../store/control.ts'
import { dependencyOrder } from '../../graph/task-graph.ts'
import { getDagVersion } from '../../store/dags.ts'
import { getRun, listTaskInstances } from '../../store/runs.ts'
import type { WebContext } from '../context.ts'
import { runJson, taskInstanceJson } from '../json.ts'
import { AUTH_ERRORS, SECURITY, errors, ref, runParams } from '../schemas.ts'

/** Who made a change, as the state history records it: a user's name, or `token:NAME` for an API token. */
export function actorOf(request: FastifyRequest): string | null {
  const p = request.principal
  if (!p) return null
  return p.kind === 'session' ? p.username : `token:${p.name}`
}

const taskParams = { type: 'object', required: ['run', 'task'], properties: { run: { type: 'string', maxLength: 300 }, task: { type: 'string', maxLength: 200 } } } as const

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
      // The run and its task instances from one snapshot: a clear or a finishing run changes both in one transaction.
      const found = await db.tx(async (q) => {
        const run = await getRun(q, request.params.run)
        return run && { run, instances: await listTaskInstances(q, run.runId) }
      }, { isolation: 'repeatable read' })
      if (!found) return reply.code(404).send({ error: 'not_found', message: `no run "${request.params.run}"` })
      const { run, instances } = found
      const spec = await getDagVersion(db, run.versionId)
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

  app.post<{ Params: { run: string; task: string }; Body: { state: 'success' | 'failed' } }>('/api/v1/runs/:run/tasks/:task/mark', {
    config: { access: 'operator' },
    schema: {
      summary: 'Mark a finished task instance success or failed',
      description:
        'Only a finished task instance (success, failed, upstream_failed, skipped, cancelled) can be marked, and only to another state. ' +
        'As in Airflow, its downstream task instances that are failed or upstream_failed are cleared and a finished run is queued again, ' +
        'so the scheduler re-evaluates them and the run ends in the state its task instances give. The history records who marked it.',
      tags: ['runs'],
      security: SECURITY,
      params: taskParams,
      body: { type: 'object', required: ['state'], properties: { state: { type: 'string', enum: ['success', 'failed'] } }, additionalProperties: false },
      response: {
        200: {
          type: 'object',
          required: ['run_id', 'task_id', 'state', 'previous_state', 'run_state', 'cleared'],
          properties: {
            run_id: { type: 'string' },
            task_id: { type: 'string' },
            state: { type: 'string' },
            previous_state: { type: 'string' },
            run_state: { type: 'string' },
            cleared: { type: 'array', items: { type: 'string' } },
          },
        },
        ...errors(400, ...AUTH_ERRORS, 404, 409),
      },
    },
    handler: async (request, reply) => {
      const { run: runId, task: taskId } = request.params
      const to = request.body.state
      const result = await db.tx((q) => markTask(q, { runId, taskId, to, actor: actorOf(request) ?? 'unknown', now: ctx.now() }))
      if (!result.ok) return reply.code(result.code === 'not_found' ? 404 : 409).send({ error: result.code, message: result.message })
      return { run_id: runId, task_id: taskId, state: to, previous_state: result.previous, run_state: result.runState, cleared: result.cleared }
    },
  })
}
