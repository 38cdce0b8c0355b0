/**
 * Models (SPEC section 7):
 * - `GET /api/v1/models`: every model with its latest, production and canary versions, and all its
 *   versions (newest first: stage, traffic share, metrics, lineage);
 * - `GET /api/v1/models/{name}`: its versions, newest first (stage, checksum, metrics, features,
 *   lineage: the shape of `cairn models show --format json`), its stage and traffic changes (audit)
 *   and its rollouts, newest first (rollout history: steps with figures and decisions);
 * - `POST /api/v1/models/{name}/versions/{version}/stage` (operator): `cairn models stage` over HTTP,
 *   audited with the user or token that asked.
 */
import type { FastifyInstance } from 'fastify'
import { createModels, MODEL_NAME } from '../../models/registry.ts'
import { modelSummaryJson, modelVersionJson, rolloutJson } from '../../models/json.ts'
import { StageConflictError } from '../../models/stages.ts'
import { MODEL_STAGES } from '../../store/models.ts'
import type { ModelActor, ModelStage } from '../../store/models.ts'
import type { WebContext } from '../context.ts'
import { AUTH_ERRORS, SECURITY, errors, time, timeOrNull } from '../schemas.ts'

const modelVersion = {
  type: 'object',
  required: ['name', 'version', 'uri', 'stage', 'traffic_share', 'artifact', 'sha256', 'metrics', 'features', 'task_kind', 'lineage', 'created_at'],
  properties: {
    name: { type: 'string' },
    version: { type: 'integer' },
    uri: { type: 'string', description: 'models:/NAME/VERSION' },
    stage: { type: 'string', enum: ['candidate', 'canary', 'production', 'archived'] },
    traffic_share: { type: 'number' },
    artifact: { type: 'string', description: 'the ONNX file, relative to the data directory' },
    sha256: { type: 'string' },
    metrics: { type: 'object', additionalProperties: true },
    features: { type: 'array', items: { type: 'string' } },
    task_kind: { type: ['string', 'null'] },
    lineage: { type: 'object', additionalProperties: true, description: 'run, task, attempt, dag_version, dataset {name, version}, feature_views; run_pruned (with run): that run was deleted by `cairn db prune`, the version and its lineage stay' },
    created_at: time,
  },
} as const

const modelSummary = {
  type: 'object',
  required: ['name', 'latest_version', 'production', 'canary', 'created_at', 'versions'],
  properties: {
    name: { type: 'string' },
    latest_version: { type: 'integer' },
    production: { type: ['integer', 'null'], description: 'the production version (at most one)' },
    canary: { type: ['integer', 'null'], description: 'the canary version (at most one)' },
    created_at: time,
    versions: { type: 'array', items: modelVersion, description: 'every version, newest first, with its stage, traffic share, metrics and lineage' },
  },
} as const

const auditEntry = {
  type: 'object',
  required: ['version', 'from_stage', 'to_stage', 'actor', 'at'],
  properties: {
    version: { type: 'integer' },
    from_stage: { type: ['string', 'null'], description: 'null when the version was registered' },
    to_stage: { type: 'string' },
    actor: { type: 'object', additionalProperties: true, description: '{user}, {token} or {run, task}' },
    traffic_share: { type: ['number', 'null'], description: "the version's share of the traffic after the change" },
    at: timeOrNull,
  },
} as const

const rolloutStep = {
  type: 'object',
  required: ['percent', 'started_at', 'ended_at', 'requests', 'errors', 'error_rate', 'p99_ms', 'passed', 'reason'],
  properties: {
    percent: { type: 'number', description: "the canary's share of the traffic in this step, percent" },
    started_at: time,
    ended_at: { ...timeOrNull, description: 'when the step was decided (null while it runs)' },
    requests: { type: 'integer', description: 'requests the canary served in the step window' },
    errors: { type: 'integer' },
    error_rate: { type: ['number', 'null'] },
    p99_ms: { type: ['number', 'null'] },
    passed: { type: ['boolean', 'null'], description: 'the decision (null while the step runs)' },
    reason: { type: ['string', 'null'], description: 'why the step failed' },
    waited_for_requests: { type: 'boolean', description: 'the window ended before min_requests had come and the step waited for them' },
  },
} as const

const rollout = {
  type: 'object',
  required: ['id', 'version', 'status', 'run_id', 'task_id', 'plan', 'steps', 'reason', 'started_at', 'ended_at'],
  properties: {
    id: { type: 'integer' },
    version: { type: 'integer' },
    status: { type: 'string', enum: ['running', 'promoted', 'rolled_back', 'held'] },
    run_id: { type: ['string', 'null'] },
    task_id: { type: ['string', 'null'] },
    plan: { type: 'object', additionalProperties: true, description: 'steps, step_duration_ms, analysis {min_requests, max_error_rate, max_p99_latency_ms}, on_failure' },
    steps: { type: 'array', items: rolloutStep },
    reason: { type: ['string', 'null'] },
    started_at: time,
    ended_at: timeOrNull,
  },
} as const

export function modelRoutes(app: FastifyInstance, ctx: WebContext, dataDir: string | undefined): void {
  // Paths of files are not part of the answers; the directory only completes the service's shape.
  const models = createModels({ db: ctx.db, dir: dataDir ?? '.', producer: { kind: 'actor', actor: 'web' } })

  app.get('/api/v1/models', {
    config: { access: 'viewer' },
    schema: {
      summary: 'Models with their latest, production and canary versions',
      tags: ['models'],
      security: SECURITY,
      response: { 200: { type: 'object', required: ['models'], properties: { models: { type: 'array', items: modelSummary } } }, ...errors(...AUTH_ERRORS) },
    },
    handler: async () => ({ models: (await models.list()).map(modelSummaryJson) }),
  })

  app.get<{ Params: { name: string } }>('/api/v1/models/:name', {
    config: { access: 'viewer' },
    schema: {
      summary: "A model's versions, newest first, and its stage changes",
      tags: ['models'],
      security: SECURITY,
      params: { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 64, pattern: MODEL_NAME.source } } },
      response: {
        200: {
          type: 'object',
          required: ['name', 'latest_version', 'versions', 'audit', 'rollouts'],
          properties: {
            name: { type: 'string' },
            latest_version: { type: 'integer' },
            versions: { type: 'array', items: modelVersion },
            audit: { type: 'array', items: auditEntry },
            rollouts: { type: 'array', items: rollout, description: 'rollout history, newest first (at most 50)' },
          },
        },
        ...errors(400, ...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const { name } = request.params
      const { versions: oldestFirst, audit, rollouts } = await models.history(name)
      const versions = oldestFirst.reverse()
      if (versions.length === 0) return reply.code(404).send({ error: 'not_found', message: `no model "${name}"` })
      return {
        name,
        latest_version: versions[0]!.version,
        versions: versions.map(modelVersionJson),
        audit: audit.map((a) => ({ version: a.version, from_stage: a.fromStage, to_stage: a.toStage, actor: a.actor, traffic_share: a.trafficShare, at: a.at.toISOString() })),
        rollouts: rollouts.map(rolloutJson),
      }
    },
  })

  app.post<{ Params: { name: string; version: number }; Body: { stage: ModelStage } }>('/api/v1/models/:name/versions/:version/stage', {
    config: { access: 'operator' },
    schema: {
      summary: 'Move a model version to a stage',
      description: 'As `cairn models stage`: promoting to production archives the previous production version; a second canary is refused (409). Audited with the user or token.',
      tags: ['models'],
      security: SECURITY,
      params: {
        type: 'object',
        required: ['name', 'version'],
        properties: { name: { type: 'string', maxLength: 64, pattern: MODEL_NAME.source }, version: { type: 'integer', minimum: 1, maximum: 2_147_483_647 } },
      },
      body: { type: 'object', required: ['stage'], properties: { stage: { type: 'string', enum: [...MODEL_STAGES] } }, additionalProperties: false },
      response: {
        200: {
          type: 'object',
          required: ['version', 'previous_stage', 'archived'],
          properties: { version: modelVersion, previous_stage: { type: 'string' }, archived: { type: ['integer', 'null'], description: 'the production version this promotion archived' } },
        },
        ...errors(400, ...AUTH_ERRORS, 404, 409),
      },
    },
    handler: async (request, reply) => {
      const { name, version } = request.params
      const p = request.principal!
      const actor: ModelActor = p.kind === 'session' ? { user: p.username } : { token: p.name }
      try {
        const changed = await models.stage(name, version, request.body.stage, actor)
        if (!changed) return reply.code(404).send({ error: 'not_found', message: `model ${name} has no version ${version}` })
        return { version: modelVersionJson({ ...changed.row, path: '', uri: `models:/${name}/${version}` }), previous_stage: changed.from, archived: changed.archived }
      } catch (error) {
        if (error instanceof StageConflictError) return reply.code(409).send({ error: 'stage_conflict', message: error.message })
        throw error
      }
    },
  })
}
