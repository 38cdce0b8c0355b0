/**
 * The two reads the status page needs that the core API does not give yet:
 * - `GET /api/v1/dags/{dag}`: a DAG's current definition (tasks with dependencies, run parameter
 *   definitions), for the graph, the grid's rows and the trigger form;
 * - `GET /api/v1/runs/{run}/attempts`: every attempt of every task of a run, for the Gantt chart, with
 *   a `train` attempt's job (`executor: {handle, state}`: Slurm job id and state, ranks with hosts),
 *   and what the run's DAG version declares for its `train` tasks (executor, cluster, ranks).
 * Read-only (viewer), masked like every response by the server's preSerialization hook.
 */
import type { FastifyInstance } from 'fastify'
import { paramsInFileOrder } from '../../dag/dag-model.ts'
import { getDag, getDagVersion, listImportErrorsOfDag } from '../../store/dags.ts'
import { getRun } from '../../store/runs.ts'
import { datasetsWaitedFor } from '../../store/dataset-schedules.ts'
import type { WebContext } from '../context.ts'
import { isoOrNull } from '../json.ts'
import { describeSchedule } from '../schedule-words.ts'
import { AUTH_ERRORS, SECURITY, dagParams, errors, ref, runParams, timeOrNull } from '../schemas.ts'
import { declaredTrainJobSchema, declaredTrainJobs } from './train-jobs.ts'

const dagDefinition = {
  type: 'object',
  required: ['dag_id', 'paused', 'params', 'tasks'],
  properties: {
    dag_id: { type: 'string' },
    description: { type: ['string', 'null'] },
    schedule: { type: ['string', 'null'] },
    schedule_description: { type: 'string' },
    schedule_datasets: { type: ['array', 'null'], items: { type: 'string' } },
    waiting_for: { type: 'array', items: { type: 'string' } },
    version_id: { type: 'integer', description: 'the current version (see /dags/{dag}/versions)' },
    timezone: { type: 'string' },
    paused: { type: 'boolean' },
    file: { type: ['string', 'null'] },
    import_errors: {
      type: 'array',
      description: "problems of the DAG's file, or of another file declaring the same DAG id; the last good version keeps running",
      items: { type: 'object', properties: { file: { type: 'string' }, dag_id: { type: ['string', 'null'] }, diagnostics: { type: 'array', items: ref('Diagnostic') } } },
    },
    params: { type: 'object', additionalProperties: true, description: 'run parameter definitions (small JSON Schemas), by name' },
    tasks: {
      type: 'array',
      items: {
        type: 'object',
        required: ['task_id', 'operator', 'depends_on'],
        properties: {
          task_id: { type: 'string' },
          operator: { type: 'string' },
          description: { type: ['string', 'null'] },
          depends_on: { type: 'array', items: { type: 'string' } },
          trigger_rule: { type: 'string' },
          retries: { type: 'integer' },
        },
      },
    },
  },
} as const

const attemptSchema = {
  type: 'object',
  required: ['task_id', 'attempt', 'state', 'queued_at', 'started_at', 'ended_at'],
  properties: {
    task_id: { type: 'string' },
    attempt: { type: 'integer' },
    state: { type: 'string' },
    worker_id: { type: ['string', 'null'] },
    queued_at: timeOrNull,
    started_at: timeOrNull,
    ended_at: timeOrNull,
    exit_code: { type: ['integer', 'null'] },
    failure_kind: { type: ['string', 'null'] },
    message: { type: ['string', 'null'] },
    executor: {
      type: ['object', 'null'],
      description: "a `train` attempt's job (null for other tasks): the handle stored before the job ran (a re-attaching worker follows it) and what is known of the job",
      required: ['handle', 'state'],
      properties: {
        handle: {
          type: ['object', 'null'],
          description: "slurm: {executor, cluster, jobId, jobName} (jobId '' while the job is being submitted: only its name is known); ssh: {executor, cluster, processes: [{host, pgid}]}",
          properties: {
            executor: { type: 'string', enum: ['slurm', 'ssh', 'local'] },
            cluster: { type: ['string', 'null'] },
            jobId: { type: 'string' },
            jobName: { type: 'string' },
            processes: { type: 'array', items: { type: 'object', properties: { host: { type: 'string' }, pgid: { type: 'integer' } } } },
          },
        },
        state: {
          type: ['object', 'null'],
          properties: {
            executor: { type: 'string', enum: ['slurm', 'ssh', 'local'] },
            job_id: { type: 'string' },
            state: { type: 'string', description: 'the executor\'s state of the job (Slurm: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, ...)' },
            ranks: { type: 'array', items: { type: 'object', required: ['rank', 'host'], properties: { rank: { type: 'integer' }, host: { type: 'string' } } } },
            updated_at: { type: 'string', format: 'date-time' },
          },
        },
      },
    },
  },
} as const

type AttemptRow = {
  task_id: string
  attempt: number
  state: string
  worker_id: string | null
  queued_at: Date | null
  started_at: Date | null
  ended_at: Date | null
  exit_code: number | null
  failure_kind: string | null
  message: string | null
  executor_handle: Record<string, unknown> | null
  executor_state: Record<string, unknown> | null
}

export function pageApiRoutes(app: FastifyInstance, ctx: WebContext): void {
  const { db } = ctx

  app.get<{ Params: { dag: string } }>('/api/v1/dags/:dag', {
    config: { access: 'viewer' },
    schema: {
      summary: "A DAG's current definition: tasks, dependencies and run parameter definitions",
      tags: ['dags'],
      security: SECURITY,
      params: dagParams,
      response: { 200: dagDefinition, ...errors(...AUTH_ERRORS, 404) },
    },
    handler: async (request, reply) => {
      const dag = await getDag(db, request.params.dag)
      if (!dag || dag.removed || dag.versionId === null) return reply.code(404).send({ error: 'not_found', message: `no DAG "${request.params.dag}"` })
      const [spec, importErrors] = await Promise.all([getDagVersion(db, dag.versionId), listImportErrorsOfDag(db, dag.dagId, dag.file)])
      return {
        dag_id: spec.id,
        description: spec.description ?? null,
        schedule: spec.schedule ?? null,
        schedule_description: describeSchedule(spec.schedule, spec.scheduleDatasets),
        schedule_datasets: spec.scheduleDatasets ?? null,
        waiting_for: spec.scheduleDatasets ? await datasetsWaitedFor(db, dag.dagId, spec.scheduleDatasets) : [],
        version_id: dag.versionId,
        timezone: spec.timezone,
        paused: dag.paused,
        file: dag.file,
        import_errors: importErrors.map((e) => ({ file: e.file, dag_id: e.dagId, diagnostics: e.diagnostics })),
        params: paramsInFileOrder(spec),
        tasks: spec.tasks.map((t) => ({ task_id: t.id, operator: t.operator, description: t.description ?? null, depends_on: t.dependsOn, trigger_rule: t.triggerRule, retries: t.retries })),
      }
    },
  })

  app.get<{ Params: { run: string } }>('/api/v1/runs/:run/attempts', {
    config: { access: 'viewer' },
    schema: {
      summary: 'Every attempt of every task of a run (for timelines), and the train jobs its DAG version declares',
      tags: ['runs'],
      security: SECURITY,
      params: runParams,
      response: {
        200: {
          type: 'object',
          required: ['attempts', 'train_jobs'],
          properties: {
            attempts: { type: 'array', items: attemptSchema },
            train_jobs: { type: 'object', additionalProperties: declaredTrainJobSchema, description: 'by task id: executor, cluster, nodes and tasks_per_node of each train task' },
          },
        },
        ...errors(...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const runId = request.params.run
      const run = await getRun(db, runId)
      if (!run) return reply.code(404).send({ error: 'not_found', message: `no run "${runId}"` })
      const { rows } = await db.query<AttemptRow>(
        `SELECT task_id, attempt, state, worker_id, queued_at, started_at, ended_at, exit_code, failure_kind, message, executor_handle, executor_state
           FROM cairn.attempt WHERE run_id = $1 ORDER BY task_id, attempt`,
        [runId],
      )
      return {
        attempts: rows.map(({ executor_handle: handle, executor_state: state, ...r }) => ({
          ...r,
          queued_at: isoOrNull(r.queued_at),
          started_at: isoOrNull(r.started_at),
          ended_at: isoOrNull(r.ended_at),
          // Only the listed fields leave the server (the response schema drops any other).
          executor: handle === null && state === null ? null : { handle, state },
        })),
        train_jobs: declaredTrainJobs(await getDagVersion(db, run.versionId)),
      }
    },
  })
}
