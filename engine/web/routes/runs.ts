/**
 * Runs: `GET /api/v1/dags/{dag}/runs` (newest first, keyset-paginated), `POST /api/v1/dags/{dag}/runs`
 * (trigger), `GET /api/v1/runs/{run}`, `POST /api/v1/runs/{run}/cancel`, `POST /api/v1/runs/{run}/clear`.
 */
import type { FastifyInstance } from 'fastify'
import { RUN_STATE_LIST } from '../../state/states.ts'
import type { RunState } from '../../state/states.ts'
import { cancelRun, clearRun, triggerRun } from '../../store/control.ts'
import { getDag, getDagVersion } from '../../store/dags.ts'
import type { DagRow } from '../../store/dags.ts'
import { getRun, listRuns } from '../../store/runs.ts'
import type { RunRow } from '../../store/runs.ts'
import { parseDagDate } from '../../time/dates.ts'
import type { WebContext } from '../context.ts'
import { runJson } from '../json.ts'
import { actorOf } from './tasks.ts'
import { AUTH_ERRORS, SECURITY, dagParams, errors, ref, runParams } from '../schemas.ts'

const MAX_RUNS_PAGE = 500


/** The cursor is opaque to clients: base64url of the last run id of the page, versioned. */
function encodeCursor(runId: string): string {
  return Buffer.from(JSON.stringify({ v: 1, after: runId })).toString('base64url')
}

function decodeCursor(cursor: string): string | undefined {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown
    if (value !== null && typeof value === 'object' && (value as { v?: unknown }).v === 1 && typeof (value as { after?: unknown }).after === 'string') return (value as { after: string }).after
  } catch {
    // not ours
  }
  return undefined
}

export type RunsPageQuery = { limit: number; cursor?: string; state?: RunState }

/** The query string of a paged list of runs: page size, the cursor from the previous page, a state filter. */
export function runsPageQuery(maxLimit: number, defaultLimit: number) {
  return {
    type: 'object',
    properties: {
      limit: { type: 'integer', minimum: 1, maximum: maxLimit, default: defaultLimit },
      cursor: { type: 'string', maxLength: 1000 },
      state: { type: 'string', enum: [...RUN_STATE_LIST] },
    },
    additionalProperties: false,
  } as const
}

export type RunsPage =
  | { ok: true; dag: DagRow; runs: RunRow[]; nextCursor: string | null }
  | { ok: false; status: 400 | 404; error: string; message: string }

/** One page of a DAG's runs, newest first, from an opaque cursor (shared by the runs and grid routes). */
export async function pageOfRuns(ctx: WebContext, dag: string, query: { limit: number; cursor?: string | undefined; state?: RunState | undefined }): Promise<RunsPage> {
  const { db } = ctx
  const { limit, cursor, state } = query
  const dagRow = await getDag(db, dag)
  if (!dagRow) return { ok: false, status: 404, error: 'not_found', message: `no DAG "${dag}"` }
  let olderThan: string | undefined
  // An empty cursor is no cursor: the first page.
  if (cursor !== undefined && cursor !== '') {
    olderThan = decodeCursor(cursor)
    const from = olderThan === undefined ? undefined : await getRun(db, olderThan)
    if (!from || from.dagId !== dag) return { ok: false, status: 400, error: 'invalid_cursor', message: 'cursor is not one this API handed out for this DAG' }
  }
  // One more than asked tells whether there is a next page.
  const rows = await listRuns(db, dag, { limit: limit + 1, ...(state ? { state } : {}), ...(olderThan !== undefined ? { olderThan } : {}) })
  const runs = rows.slice(0, limit)
  return { ok: true, dag: dagRow, runs, nextCursor: rows.length > limit ? encodeCursor(runs.at(-1)!.runId) : null }
}

export function runRoutes(app: FastifyInstance, ctx: WebContext): void {
  const { db } = ctx

  app.get<{ Params: { dag: string }; Querystring: RunsPageQuery }>('/api/v1/dags/:dag/runs', {
    config: { access: 'viewer' },
    schema: {
      summary: 'Runs of a DAG, newest first',
      description: 'Pass `next_cursor` of a page as `cursor` to get the next (older) page; it is null on the last page.',
      tags: ['runs'],
      security: SECURITY,
      params: dagParams,
      querystring: runsPageQuery(MAX_RUNS_PAGE, 50),
      response: {
        200: { type: 'object', required: ['runs', 'next_cursor'], properties: { runs: { type: 'array', items: ref('Run') }, next_cursor: { type: ['string', 'null'] } } },
        ...errors(400, ...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const page = await pageOfRuns(ctx, request.params.dag, request.query)
      if (!page.ok) return reply.code(page.status).send({ error: page.error, message: page.message })
      return { runs: page.runs.map(runJson), next_cursor: page.nextCursor }
    },
  })

  app.post<{ Params: { dag: string }; Body: { params?: Record<string, unknown>; logical_date?: string } | undefined }>('/api/v1/dags/:dag/runs', {
    config: { access: 'operator' },
    schema: {
      summary: 'Trigger a run',
      description: 'Params are checked against the DAG\'s definitions (defaults filled in). `logical_date` (2026-01-01 or an ISO datetime, in the DAG\'s time zone unless it has an offset) defaults to now.',
      tags: ['runs'],
      security: SECURITY,
      params: dagParams,
      body: {
        type: 'object',
        properties: {
          params: { type: 'object', additionalProperties: true, maxProperties: 500 },
          logical_date: { type: 'string', minLength: 1, maxLength: 64 },
        },
        additionalProperties: false,
      },
      response: {
        201: { type: 'object', required: ['run_id', 'state'], properties: { run_id: { type: 'string' }, state: { type: 'string' } } },
        ...errors(400, ...AUTH_ERRORS, 404, 409),
      },
    },
    handler: async (request, reply) => {
      const { dag: dagId } = request.params
      const given = request.body?.params ?? {}
      const dateText = request.body?.logical_date
      const outcome = await db.tx(async (q) => {
        const dag = await getDag(q, dagId)
        if (!dag || dag.versionId === null || dag.removed) return { status: 404, body: { error: 'not_found', message: `no DAG "${dagId}"` } }
        const spec = await getDagVersion(q, dag.versionId)
        let logicalDate: Date | undefined
        if (dateText !== undefined) {
          logicalDate = parseDagDate(dateText, spec.timezone)
          if (!logicalDate) return { status: 400, body: { error: 'invalid_logical_date', message: `logical_date "${dateText}" is not a date (use 2026-01-01 or 2026-01-01T02:00:00Z)` } }
        }
        const result = await triggerRun(q, { now: ctx.now }, { dagId, params: given, ...(logicalDate ? { logicalDate } : {}) })
        if (result.ok) return { status: 201, body: { run_id: result.run.runId, state: result.run.state } }
        if (result.code === 'invalid_params') return { status: 400, body: { error: result.code, message: result.message, errors: result.errors } }
        return { status: result.code === 'not_found' ? 404 : 409, body: { error: result.code, message: result.message } }
      })
      return reply.code(outcome.status).send(outcome.body)
    },
  })

  app.get<{ Params: { run: string } }>('/api/v1/runs/:run', {
    config: { access: 'viewer' },
    schema: { summary: 'One run', tags: ['runs'], security: SECURITY, params: runParams, response: { 200: ref('Run'), ...errors(...AUTH_ERRORS, 404) } },
    handler: async (request, reply) => {
      const run = await getRun(db, request.params.run)
      if (!run) return reply.code(404).send({ error: 'not_found', message: `no run "${request.params.run}"` })
      return runJson(run)
    },
  })

  app.post<{ Params: { run: string } }>('/api/v1/runs/:run/cancel', {
    config: { access: 'operator' },
    schema: {
      summary: 'Cancel a queued or running run',
      description: 'Unfinished task instances become cancelled and workers stop their processes. A run that has already ended is left as it is (`previous_state` tells).',
      tags: ['runs'],
      security: SECURITY,
      params: runParams,
      response: {
        200: { type: 'object', required: ['run_id', 'state', 'previous_state'], properties: { run_id: { type: 'string' }, state: { type: 'string' }, previous_state: { type: 'string' } } },
        ...errors(...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const { run: runId } = request.params
      const outcome = await db.tx(async (q) => {
        const before = await getRun(q, runId, true)
        if (!before) return undefined
        const result = await cancelRun(q, runId, ctx.now(), actorOf(request))
        return { previous: before.state, state: result.state ?? before.state }
      })
      if (!outcome) return reply.code(404).send({ error: 'not_found', message: `no run "${runId}"` })
      return { run_id: runId, state: outcome.state, previous_state: outcome.previous }
    },
  })

  app.post<{ Params: { run: string }; Body: { task?: string } | undefined }>('/api/v1/runs/:run/clear', {
    config: { access: 'operator' },
    schema: {
      summary: 'Run a finished run again',
      description: 'Without `task`: every task instance that did not succeed; with `task`: that task and everything downstream of it. The run is queued again (`state`: queued); a run whose task instances all succeeded has nothing to clear without `task` and keeps its state (`cleared`: []).',
      tags: ['runs'],
      security: SECURITY,
      params: runParams,
      body: { type: 'object', properties: { task: { type: 'string', minLength: 1, maxLength: 200 } }, additionalProperties: false },
      response: {
        200: { type: 'object', required: ['run_id', 'state', 'cleared'], properties: { run_id: { type: 'string' }, state: { type: 'string' }, cleared: { type: 'array', items: { type: 'string' } } } },
        ...errors(400, ...AUTH_ERRORS, 404, 409),
      },
    },
    handler: async (request, reply) => {
      const { run: runId } = request.params
      const taskId = request.body?.task
      const outcome = await db.tx(async (q) => {
        const run = await getRun(q, runId, true)
        if (!run) return { status: 404, body: { error: 'not_found', message: `no run "${runId}"` } }
        if (run.state === 'queued' || run.state === 'running') return { status: 409, body: { error: 'run_active', message: `run ${runId} is ${run.state}; cancel it or wait for it to finish before clearing` } }
        if (taskId !== undefined && !(await getDagVersion(q, run.versionId)).tasks.some((t) => t.id === taskId)) {
          return { status: 404, body: { error: 'not_found', message: `run ${runId} has no task "${taskId}"` } }
        }
        const result = await clearRun(q, runId, taskId, actorOf(request))
        if (!result.ok) return { status: 409, body: { error: 'conflict', message: result.message } }
        // Every task instance succeeded and no task was named: nothing was cleared and the run keeps its state.
        return { status: 200, body: { run_id: runId, state: result.cleared.length === 0 && taskId === undefined ? run.state : 'queued', cleared: result.cleared } }
      })
      return reply.code(outcome.status).send(outcome.body)
    },
  })
}
