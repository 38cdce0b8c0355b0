/**
 * Models (SPEC section 7), read-only, for viewers:
 * - `GET /api/v1/models`: every model with its latest, production and canary versions;
 * - `GET /api/v1/models/{name}`: its versions, newest first (stage, checksum, metrics, features,
 *   lineage: the shape of `cairn models show --format json`) and its stage changes (audit).
 */
import type { FastifyInstance } from 'fastify'
import { createModels, MODEL_NAME } from '../../models/registry.ts'
import { modelSummaryJson, modelVersionJson } from '../../models/json.ts'
import type { WebContext } from '../context.ts'
import { AUTH_ERRORS, SECURITY, errors, time, timeOrNull } from '../schemas.ts'

const modelSummary = {
  type: 'object',
  required: ['name', 'latest_version', 'production', 'canary', 'created_at'],
  properties: {
    name: { type: 'string' },
    latest_version: { type: 'integer' },
    production: { type: ['integer', 'null'], description: 'the production version (at most one)' },
    canary: { type: ['integer', 'null'], description: 'the canary version (at most one)' },
    created_at: time,
  },
} as const

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
    lineage: { type: 'object', additionalProperties: true, description: 'run, task, attempt, dag_version, dataset {name, version}, feature_views' },
    created_at: time,
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
    at: timeOrNull,
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
          required: ['name', 'latest_version', 'versions', 'audit'],
          properties: { name: { type: 'string' }, latest_version: { type: 'integer' }, versions: { type: 'array', items: modelVersion }, audit: { type: 'array', items: auditEntry } },
        },
        ...errors(400, ...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const { name } = request.params
      const versions = (await models.versions(name)).reverse()
      if (versions.length === 0) return reply.code(404).send({ error: 'not_found', message: `no model "${name}"` })
      const audit = (await models.audit(name)).map((a) => ({ version: a.version, from_stage: a.fromStage, to_stage: a.toStage, actor: a.actor, at: a.at.toISOString() }))
      return { name, latest_version: versions[0]!.version, versions: versions.map(modelVersionJson), audit }
    },
  })
}
