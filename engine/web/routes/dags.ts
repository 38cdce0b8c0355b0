/** `GET /api/v1/dags`, `POST /api/v1/dags/{dag}/pause`, `POST /api/v1/dags/{dag}/unpause`. */
import type { FastifyInstance } from 'fastify'
import { getDagVersion, listDags, listImportErrors, setPaused } from '../../store/dags.ts'
import { recentRunsByDag } from '../../store/grid.ts'
import { datasetsWaitedFor } from '../../store/dataset-schedules.ts'
import type { WebContext } from '../context.ts'
import { isoOrNull } from '../json.ts'
import { nextScheduledRun } from '../next-run.ts'
import { describeSchedule } from '../schedule-words.ts'
import { AUTH_ERRORS, SECURITY, dagParams, errors, ref, time } from '../schemas.ts'

/** Runs shown as marks beside each DAG in the list. */
const RECENT_RUNS = 10

const dagSchema = {
  type: 'object',
  required: ['dag_id', 'paused', 'schedule', 'next_run', 'import_errors'],
  properties: {
    dag_id: { type: 'string' },
    description: { type: ['string', 'null'] },
    owner: { type: ['string', 'null'] },
    tags: { type: 'array', items: { type: 'string' } },
    file: { type: ['string', 'null'] },
    paused: { type: 'boolean' },
    schedule: { type: ['string', 'null'], description: 'cron expression or preset; null: manual runs only' },
    schedule_description: { type: 'string', description: 'the schedule in words, e.g. "At 02:00, Monday through Friday"' },
    schedule_datasets: { type: ['array', 'null'], items: { type: 'string' }, description: 'data-aware schedule: the datasets that trigger a run together; null: none' },
    waiting_for: { type: 'array', items: { type: 'string' }, description: 'data-aware schedule: the listed datasets without a new version since the last dataset-triggered run' },
    timezone: { type: 'string' },
    catchup: { type: 'string', enum: ['none', 'latest', 'all'] },
    next_run: {
      type: ['object', 'null'],
      description: 'the run the schedule creates next; null when paused, unscheduled or past end_date',
      properties: {
        logical_date: time,
        data_interval_end: time,
        run_after: { ...time, description: 'when the scheduler creates it (in the past: due now)' },
      },
    },
    import_errors: { type: 'integer', description: "errors in the DAG's file (its last good version keeps running)" },
    recent_runs: {
      type: 'array',
      description: `the newest ${RECENT_RUNS} runs, newest first`,
      items: { type: 'object', required: ['run_id', 'state', 'logical_date'], properties: { run_id: { type: 'string' }, state: { type: 'string' }, logical_date: time } },
    },
  },
} as const

export function dagRoutes(app: FastifyInstance, ctx: WebContext): void {
  const { db } = ctx

  app.get('/api/v1/dags', {
    config: { access: 'viewer' },
    schema: {
      summary: 'DAGs with schedule, paused flag, next run and import errors',
      tags: ['dags'],
      security: SECURITY,
      response: {
        200: {
          type: 'object',
          required: ['dags', 'import_errors'],
          properties: {
            dags: { type: 'array', items: dagSchema },
            import_errors: {
              type: 'array',
              description: 'every file that failed to load, with its problems',
              items: { type: 'object', properties: { file: { type: 'string' }, dag_id: { type: ['string', 'null'] }, diagnostics: { type: 'array', items: ref('Diagnostic') } } },
            },
          },
        },
        ...errors(...AUTH_ERRORS),
      },
    },
    handler: async () => {
      const now = ctx.now()
      const [dags, importErrors, recent] = await Promise.all([listDags(db), listImportErrors(db), recentRunsByDag(db, RECENT_RUNS)])
      const recentByDag = new Map<string, { run_id: string; state: string; logical_date: string }[]>()
      for (const r of recent) {
        let list = recentByDag.get(r.dagId)
        if (!list) recentByDag.set(r.dagId, (list = []))
        list.push({ run_id: r.runId, state: r.state, logical_date: r.logicalDate.toISOString() })
      }
      const shown = await Promise.all(
        dags
          .filter((d) => !d.removed)
          .map(async (d) => {
            const spec = d.versionId === null ? undefined : await getDagVersion(db, d.versionId)
            const next = spec ? nextScheduledRun(spec, d, now) : null
            const errorCount = importErrors
              .filter((e) => e.dagId === d.dagId || (d.file !== null && e.file === d.file))
              .reduce((n, e) => n + e.diagnostics.filter((x) => x.severity === 'error').length, 0)
            return {
              dag_id: d.dagId,
              description: spec?.description ?? null,
              owner: spec?.owner ?? null,
              tags: spec?.tags ?? [],
              file: d.file,
              paused: d.paused,
              schedule: spec?.schedule ?? null,
              schedule_description: describeSchedule(spec?.schedule, spec?.scheduleDatasets),
              schedule_datasets: spec?.scheduleDatasets ?? null,
              waiting_for: spec?.scheduleDatasets ? await datasetsWaitedFor(db, d.dagId, spec.scheduleDatasets) : [],
              timezone: spec?.timezone ?? 'UTC',
              catchup: spec?.catchup ?? 'latest',
              next_run: next && { logical_date: isoOrNull(next.logicalDate), data_interval_end: isoOrNull(next.dataIntervalEnd), run_after: isoOrNull(next.runAfter) },
              import_errors: errorCount,
              recent_runs: recentByDag.get(d.dagId) ?? [],
            }
          }),
      )
      return { dags: shown, import_errors: importErrors.map((e) => ({ file: e.file, dag_id: e.dagId, diagnostics: e.diagnostics })) }
    },
  })

  for (const paused of [true, false]) {
    app.post<{ Params: { dag: string } }>(`/api/v1/dags/:dag/${paused ? 'pause' : 'unpause'}`, {
      config: { access: 'operator' },
      schema: {
        summary: paused ? "Pause a DAG's schedule (running runs carry on; manual triggers still run)" : "Resume a DAG's schedule",
        tags: ['dags'],
        security: SECURITY,
        params: dagParams,
        response: { 200: { type: 'object', required: ['dag_id', 'paused'], properties: { dag_id: { type: 'string' }, paused: { type: 'boolean' } } }, ...errors(...AUTH_ERRORS, 404) },
      },
      handler: async (request, reply) => {
        const { dag } = request.params
        const found = await db.tx(async (q) => {
          const changed = await setPaused(q, dag, paused)
          // An unpaused DAG may have intervals due right now; the scheduler should not wait for its next pass.
          if (changed) await q.query('SELECT pg_notify($1, $2)', ['cairn_wake', dag])
          return changed
        })
        if (!found) return reply.code(404).send({ error: 'not_found', message: `no DAG "${dag}"` })
        return { dag_id: dag, paused }
      },
    })
  }
}
