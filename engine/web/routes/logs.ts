/**
 * `GET /api/v1/runs/{run}/tasks/{task}/logs?attempt&follow&after`
 *
 * Without `follow`: the stored lines of one attempt (default the latest), oldest first, a page at a
 * time (`after` = the last `id` seen). With `follow=true`: server-sent events — every stored line,
 * then new ones as workers write them (woken by LISTEN `cairn_log`, polling as the fallback), until the
 * task instance ends (with `attempt`: until that attempt ends). Events:
 *   event: line     data: {"id","attempt","stream","line","at"}   (the SSE id is the line's id)
 *   event: attempt  data: {"attempt"}   a retry started; its lines follow
 *   event: end      data: {"state","attempt"}   the last event; the server then closes the stream
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isConnectionError } from '../../store/db.ts'
import { readLogs } from '../../store/logs.ts'
import type { LogLine } from '../../store/logs.ts'
import { getAttemptState, getTaskInstanceStatus, isAttemptOver } from '../../store/run-queries.ts'
import { getRun } from '../../store/runs.ts'
import { isTerminalTaskState } from '../../state/states.ts'
import type { WebContext } from '../context.ts'
import { logLineJson } from '../json.ts'
import { createWaker } from '../../runtime/waker.ts'
import { openEventStream } from '../sse.ts'
import { AUTH_ERRORS, SECURITY, errors, MAX_ID, MAX_PG_INTEGER, ref } from '../schemas.ts'

const PAGE = 5000

type Target = { runId: string; taskId: string }
type Query = { attempt?: number; follow: boolean; after: number }

export function logRoutes(app: FastifyInstance, ctx: WebContext): void {
  const { db } = ctx

  app.get<{ Params: { run: string; task: string }; Querystring: Query }>('/api/v1/runs/:run/tasks/:task/logs', {
    config: { access: 'viewer' },
    schema: {
      summary: "A task's log lines; follow=true streams them as server-sent events",
      tags: ['runs'],
      security: SECURITY,
      params: { type: 'object', required: ['run', 'task'], properties: { run: { type: 'string', maxLength: 300 }, task: { type: 'string', maxLength: 200 } } },
      querystring: {
        type: 'object',
        properties: {
          attempt: { type: 'integer', minimum: 1, maximum: MAX_PG_INTEGER, description: 'default: the latest attempt (with follow: each retry in turn)' },
          follow: { type: 'boolean', default: false },
          after: { type: 'integer', minimum: 0, maximum: MAX_ID, default: 0, description: 'only lines with a larger id (paging without follow)' },
        },
        additionalProperties: false,
      },
      response: {
        200: {
          description: 'JSON without follow; text/event-stream with follow=true',
          type: 'object',
          required: ['run_id', 'task_id', 'attempt', 'state', 'lines', 'next_after'],
          properties: {
            run_id: { type: 'string' },
            task_id: { type: 'string' },
            attempt: { type: 'integer', description: '0: the task has not started' },
            state: { type: 'string', description: 'the task instance state' },
            lines: { type: 'array', items: ref('LogLine') },
            next_after: { type: ['integer', 'null'], description: 'pass as `after` for more lines; null when this was all' },
          },
        },
        ...errors(400, ...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const { run: runId, task: taskId } = request.params
      const { attempt: fixedAttempt, follow, after } = request.query
      if (!(await getRun(db, runId))) return reply.code(404).send({ error: 'not_found', message: `no run "${runId}"` })
      const status = await getTaskInstanceStatus(db, runId, taskId)
      if (!status) return reply.code(404).send({ error: 'not_found', message: `run ${runId} has no task "${taskId}"` })
      if (fixedAttempt !== undefined && fixedAttempt > status.attempt) {
        return reply.code(404).send({ error: 'not_found', message: `task ${taskId} has no attempt ${fixedAttempt} (${status.attempt === 0 ? 'it has not started yet' : `its latest is ${status.attempt}`})` })
      }
      if (follow) return stream(ctx, request, reply, { runId, taskId }, fixedAttempt)
      const attempt = fixedAttempt ?? status.attempt
      const lines = attempt === 0 ? [] : await readLogs(db, { runId, taskId, attempt }, after, PAGE)
      return {
        run_id: runId,
        task_id: taskId,
        attempt,
        state: status.state,
        lines: lines.map((l) => logLineJson(attempt, l)),
        next_after: lines.length === PAGE ? lines.at(-1)!.id : null,
      }
    },
  })
}

/**
 * The state is read before the lines: a worker stores an attempt's last lines before it records the
 * attempt's end, so once the state says "ended", one more read has every line.
 */
async function stream(ctx: WebContext, request: FastifyRequest, reply: FastifyReply, target: Target, fixedAttempt: number | undefined): Promise<void> {
  const { db } = ctx
  const out = openEventStream(ctx, reply)
  const waker = createWaker()
  out.closed.addEventListener('abort', () => waker.wake(), { once: true })
  const unsubscribe = ctx.logFeed.subscribe(target.runId, target.taskId, () => waker.wake())
  const closed = (): boolean => out.closed.aborted
  const event = out.event
  const flush = async (attempt: number, afterId: number): Promise<number> => {
    let last = afterId
    for (;;) {
      const lines: LogLine[] = await readLogs(db, { ...target, attempt }, last, PAGE)
      for (const line of lines) await event('line', logLineJson(attempt, line), line.id)
      if (lines.length > 0) last = lines.at(-1)!.id
      if (lines.length < PAGE || closed()) return last
    }
  }

  try {
    let attempt = fixedAttempt ?? 0
    let afterId = 0
    while (!closed()) {
      try {
        const status = await getTaskInstanceStatus(db, target.runId, target.taskId)
        if (!status) {
          await event('end', { state: 'missing', attempt })
          break
        }
        if (fixedAttempt === undefined && status.attempt > attempt) {
          if (attempt > 0) await flush(attempt, afterId)
          attempt = status.attempt
          afterId = 0
          await event('attempt', { attempt })
        }
        let ended: string | undefined
        if (fixedAttempt !== undefined) {
          const state = (await getAttemptState(db, { ...target, attempt })) ?? 'lost'
          if (isAttemptOver(state)) ended = state
        } else if (isTerminalTaskState(status.state)) ended = status.state
        if (attempt > 0) afterId = await flush(attempt, afterId)
        if (ended !== undefined) {
          await event('end', { state: ended, attempt })
          break
        }
      } catch (error) {
        // The database went away: keep the stream open and try again; anything else ends it.
        if (!isConnectionError(error)) {
          request.log.error({ err: error }, 'log stream failed')
          await event('error', { message: 'the log stream failed; reconnect to resume' })
          break
        }
      }
      await waker.sleep(ctx.followPollMs)
    }
  } finally {
    unsubscribe()
    out.end()
  }
}
