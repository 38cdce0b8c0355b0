/**
 * `GET /api/v1/runs/{run}/tasks/{task}/logs?attempt&follow&after&before&tail` and
 * `GET /api/v1/runs/{run}/tasks/{task}/logs/download?attempt&timestamps`
 *
 * A line's `id` is its number within its attempt, from 1. A line with `dropped` stands for lines the
 * attempt's log cap left out; its id is the last of them.
 *
 * Without `follow`: one page of the stored lines of one attempt (default the latest), oldest first:
 * from the start (`after` = the last id seen), or with `tail=N` the last N lines (before `before`).
 * With `follow=true`: server-sent events, starting at the last `tail` lines (default 1000) of the
 * attempt, then new ones as workers write them (woken by LISTEN `cairn_log`, polling as the fallback),
 * until the task instance ends (with `attempt`: until that attempt ends). Events:
 *   event: attempt  data: {"attempt","earlier"}   lines of this attempt follow; `earlier`: lines
 *                   before them exist (fetch with before=<first id>); a retry starts from its first line
 *   event: line     data: {"id","attempt","stream","line","at"[,"dropped"]}   SSE id "<attempt>:<id>"
 *   event: end      data: {"state","attempt"}   the last event; the server then closes the stream
 * A reconnecting EventSource sends Last-Event-ID and the stream carries on after that line.
 *
 * The download is the whole stored log of one attempt as text/plain (an attachment), lines masked
 * like every response, optionally each prefixed with its ISO time.
 */
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isConnectionError } from '../../store/db.ts'
import { readLogs, readLogsBefore } from '../../store/logs.ts'
import type { AttemptKey, LogLine } from '../../store/logs.ts'
import { getAttemptState, getTaskInstanceStatus, isAttemptOver } from '../../store/run-queries.ts'
import { getRun } from '../../store/runs.ts'
import { isTerminalTaskState } from '../../state/states.ts'
import type { WebContext } from '../context.ts'
import { logLineJson } from '../json.ts'
import { createWaker } from '../../runtime/waker.ts'
import { openEventStream } from '../sse.ts'
import { AUTH_ERRORS, SECURITY, errors, MAX_ID, MAX_PG_INTEGER, queryFlag, queryFlagValue, ref } from '../schemas.ts'

const PAGE = 5000
const FOLLOW_TAIL = 1000

type Target = { runId: string; taskId: string }
type Query = { attempt?: number; follow?: string; after?: number; before?: number; tail?: number }
type Params = { run: string; task: string }

const PARAMS = { type: 'object', required: ['run', 'task'], properties: { run: { type: 'string', maxLength: 300 }, task: { type: 'string', maxLength: 200 } } } as const

export function logRoutes(app: FastifyInstance, ctx: WebContext): void {
  const { db } = ctx

  /** The run, the task and the attempt asked for, or the 404 already sent. */
  const find = async (reply: FastifyReply, params: Params, attempt: number | undefined) => {
    const { run: runId, task: taskId } = params
    if (!(await getRun(db, runId))) return void reply.code(404).send({ error: 'not_found', message: `no run "${runId}"` })
    const status = await getTaskInstanceStatus(db, runId, taskId)
    if (!status) return void reply.code(404).send({ error: 'not_found', message: `run ${runId} has no task "${taskId}"` })
    if (attempt !== undefined && attempt > status.attempt) {
      return void reply.code(404).send({ error: 'not_found', message: `task ${taskId} has no attempt ${attempt} (${status.attempt === 0 ? 'it has not started yet' : `its latest is ${status.attempt}`})` })
    }
    return status
  }

  app.get<{ Params: Params; Querystring: Query }>('/api/v1/runs/:run/tasks/:task/logs', {
    config: { access: 'viewer' },
    schema: {
      summary: "A task's log lines; follow=true streams them as server-sent events, from the tail",
      tags: ['runs'],
      security: SECURITY,
      params: PARAMS,
      querystring: {
        type: 'object',
        properties: {
          attempt: { type: 'integer', minimum: 1, maximum: MAX_PG_INTEGER, description: 'default: the latest attempt (with follow: each retry in turn)' },
          follow: queryFlag('stream the lines as server-sent events until the task ends'),
          after: { type: 'integer', minimum: 0, maximum: MAX_ID, description: 'only lines with a larger id (paging forwards; with follow: carry on after this line)' },
          before: { type: 'integer', minimum: 1, maximum: MAX_ID, description: 'only lines with a smaller id (paging backwards; the last `tail` of them, default 5000)' },
          tail: { type: 'integer', minimum: 0, maximum: PAGE, description: `the last N lines (of those before \`before\`); with follow the stream starts with them (default ${FOLLOW_TAIL})` },
        },
        additionalProperties: false,
      },
      response: {
        200: {
          description: 'JSON without follow; text/event-stream with follow=true',
          type: 'object',
          required: ['run_id', 'task_id', 'attempt', 'state', 'lines', 'next_after', 'next_before'],
          properties: {
            run_id: { type: 'string' },
            task_id: { type: 'string' },
            attempt: { type: 'integer', description: '0: the task has not started' },
            state: { type: 'string', description: 'the task instance state' },
            lines: { type: 'array', items: ref('LogLine') },
            next_after: { type: ['integer', 'null'], description: 'pass as `after` for more lines; null when this was all' },
            next_before: { type: ['integer', 'null'], description: 'pass as `before` (with `tail`) for the lines before these; null when these start at the first line' },
          },
        },
        ...errors(400, ...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const { attempt: fixedAttempt, after, before, tail } = request.query
      const follow = queryFlagValue(request.query.follow)
      const status = await find(reply, request.params, fixedAttempt)
      if (!status) return reply
      const target = { runId: request.params.run, taskId: request.params.task }
      if (follow) return stream(ctx, request, reply, target, fixedAttempt, { after, tail: tail ?? FOLLOW_TAIL })
      const attempt = fixedAttempt ?? status.attempt
      const page = { run_id: target.runId, task_id: target.taskId, attempt, state: status.state }
      if (attempt === 0) return { ...page, lines: [], next_after: null, next_before: null }
      const at = { ...target, attempt }
      if (before !== undefined || tail !== undefined) {
        const { lines, earlier } = await readLogsBefore(db, at, before, tail ?? PAGE)
        return {
          ...page,
          lines: lines.map((l) => logLineJson(attempt, l)),
          next_after: before !== undefined && lines.length > 0 ? lines.at(-1)!.id : null,
          next_before: earlier && lines.length > 0 ? lines[0]!.id : null,
        }
      }
      const lines = await readLogs(db, at, after ?? 0, PAGE)
      return {
        ...page,
        lines: lines.map((l) => logLineJson(attempt, l)),
        next_after: lines.length === PAGE ? lines.at(-1)!.id : null,
        next_before: (after ?? 0) > 0 && lines.length > 0 ? lines[0]!.id : null,
      }
    },
  })

  app.get<{ Params: Params; Querystring: { attempt?: number; timestamps?: string } }>('/api/v1/runs/:run/tasks/:task/logs/download', {
    config: { access: 'viewer' },
    schema: {
      summary: "The whole stored log of one attempt as a text file (Content-Disposition: attachment)",
      tags: ['runs'],
      security: SECURITY,
      produces: ['text/plain'],
      params: PARAMS,
      querystring: {
        type: 'object',
        properties: {
          attempt: { type: 'integer', minimum: 1, description: 'default: the latest attempt' },
          timestamps: queryFlag('start each line with its ISO time'),
        },
        additionalProperties: false,
      },
      response: {
        200: { description: 'the lines, one per line of text (a line standing for lines left out by the cap included)', content: { 'text/plain': { schema: { type: 'string' } } } },
        ...errors(400, ...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const { attempt: asked } = request.query
      const timestamps = queryFlagValue(request.query.timestamps)
      const status = await find(reply, request.params, asked)
      if (!status) return reply
      const attempt = asked ?? status.attempt
      if (attempt === 0) return reply.code(404).send({ error: 'not_found', message: `task ${request.params.task} has not started yet` })
      const at = { runId: request.params.run, taskId: request.params.task, attempt }
      const name = `${at.runId}.${at.taskId}.${attempt}.log`.replace(/[^A-Za-z0-9._-]/g, '_')
      return reply
        .type('text/plain; charset=utf-8')
        .header('content-disposition', `attachment; filename="${name}"`)
        .send(Readable.from(logText(ctx, at, timestamps)))
    },
  })
}

/** The attempt's lines as text, a page at a time (memory stays one page whatever the log's size). */
async function* logText(ctx: WebContext, at: AttemptKey, timestamps: boolean): AsyncGenerator<string> {
  let after = 0
  for (;;) {
    const lines = await readLogs(ctx.db, at, after, PAGE)
    if (lines.length === 0) return
    const mask = ctx.masker()
    yield lines.map((l) => `${timestamps ? `${l.at.toISOString()} ` : ''}${mask(l.line)}\n`).join('')
    after = lines.at(-1)!.id
    if (lines.length < PAGE) return
  }
}

/** "2:1534" (attempt 2, line 1534), as the stream's SSE ids; undefined for anything else. */
function parseLastEventId(value: unknown): { attempt: number; after: number } | undefined {
  const match = typeof value === 'string' ? /^(\d{1,9}):(\d{1,15})$/.exec(value) : null
  return match ? { attempt: Number(match[1]), after: Number(match[2]) } : undefined
}

/**
 * The state is read before the lines: a worker stores an attempt's last lines before it records the
 * attempt's end, so once the state says "ended", one more read has every line.
 */
async function stream(ctx: WebContext, request: FastifyRequest, reply: FastifyReply, target: Target, fixedAttempt: number | undefined, from: { after: number | undefined; tail: number }): Promise<void> {
  const { db } = ctx
  const out = openEventStream(ctx, reply)
  const waker = createWaker()
  out.closed.addEventListener('abort', () => waker.wake(), { once: true })
  const unsubscribe = ctx.logFeed.subscribe(target.runId, target.taskId, () => waker.wake())
  const closed = (): boolean => out.closed.aborted
  const event = out.event
  const sendLine = (attempt: number, line: LogLine) => event('line', logLineJson(attempt, line), `${attempt}:${line.id}`)
  const flush = async (attempt: number, afterId: number): Promise<number> => {
    let last = afterId
    for (;;) {
      const lines: LogLine[] = await readLogs(db, { ...target, attempt }, last, PAGE)
      for (const line of lines) await sendLine(attempt, line)
      if (lines.length > 0) last = lines.at(-1)!.id
      if (lines.length < PAGE || closed()) return last
    }
  }
  /** The first attempt of the stream starts at its tail (or where the client asked); returns the last id sent. */
  const begin = async (attempt: number, afterId: number | undefined): Promise<number> => {
    if (afterId !== undefined) {
      await event('attempt', { attempt, earlier: afterId > 0 })
      return flush(attempt, afterId)
    }
    const { lines, earlier } = await readLogsBefore(db, { ...target, attempt }, undefined, Math.max(from.tail, 1))
    const shown = from.tail === 0 ? [] : lines
    await event('attempt', { attempt, earlier: from.tail === 0 ? lines.length > 0 : earlier })
    for (const line of shown) await sendLine(attempt, line)
    return lines.at(-1)?.id ?? 0
  }

  const resume = parseLastEventId(request.headers['last-event-id'])
  try {
    let attempt = 0
    let afterId = 0
    // The first attempt streamed starts at the tail, unless the client says where it stopped.
    let startAfter: number | undefined = from.after
    if (resume && (fixedAttempt === undefined || resume.attempt === fixedAttempt)) {
      attempt = resume.attempt
      afterId = resume.after
      startAfter = undefined
    }
    let started = resume !== undefined && attempt > 0
    while (!closed()) {
      try {
        const status = await getTaskInstanceStatus(db, target.runId, target.taskId)
        if (!status) {
          await event('end', { state: 'missing', attempt })
          break
        }
        const current = fixedAttempt ?? status.attempt
        if (current > attempt || (!started && current > 0)) {
          if (started) {
            // A retry started: the rest of the previous attempt, then the new one from its first line.
            await flush(attempt, afterId)
            attempt = current
            afterId = 0
            await event('attempt', { attempt, earlier: false })
          } else {
            attempt = current
            afterId = await begin(attempt, startAfter)
            started = true
          }
        }
        let ended: string | undefined
        if (fixedAttempt !== undefined) {
          const state = (await getAttemptState(db, { ...target, attempt })) ?? 'lost'
          if (isAttemptOver(state)) ended = state
        } else if (isTerminalTaskState(status.state)) ended = status.state
        if (started) afterId = await flush(attempt, afterId)
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
