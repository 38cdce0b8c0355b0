/**
 * A DAG's version history and source: `GET /api/v1/dags/{dag}/versions` (newest first, with how many
 * runs each version ran) and `GET /api/v1/dags/{dag}/versions/{version}` (the YAML as loaded).
 * Sources pass through the server's secret masking like every response.
 */
import type { FastifyInstance } from 'fastify'
import { getDag } from '../../store/dags.ts'
import { getDagVersionSource, listDagVersions } from '../../store/dag-versions.ts'
import type { WebContext } from '../context.ts'
import { AUTH_ERRORS, SECURITY, dagParams, errors, idNumber, time } from '../schemas.ts'

const MAX_VERSIONS = 200

export function dagVersionRoutes(app: FastifyInstance, ctx: WebContext): void {
  const { db } = ctx

  app.get<{ Params: { dag: string }; Querystring: { limit: number } }>('/api/v1/dags/:dag/versions', {
    config: { access: 'viewer' },
    schema: {
      summary: "A DAG's versions, newest first",
      tags: ['dags'],
      security: SECURITY,
      params: dagParams,
      querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: MAX_VERSIONS, default: 50 } }, additionalProperties: false },
      response: {
        200: {
          type: 'object',
          required: ['dag_id', 'current_version', 'versions'],
          properties: {
            dag_id: { type: 'string' },
            current_version: { type: ['integer', 'null'] },
            versions: {
              type: 'array',
              items: {
                type: 'object',
                required: ['version_id', 'hash', 'created_at', 'runs', 'current'],
                properties: { version_id: { type: 'integer' }, hash: { type: 'string' }, created_at: time, runs: { type: 'integer' }, current: { type: 'boolean' } },
              },
            },
          },
        },
        ...errors(400, ...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const { dag } = request.params
      const row = await getDag(db, dag)
      if (!row) return reply.code(404).send({ error: 'not_found', message: `no DAG "${dag}"` })
      const versions = await listDagVersions(db, dag, request.query.limit)
      return {
        dag_id: dag,
        current_version: versions.find((v) => v.current)?.versionId ?? row.versionId,
        versions: versions.map((v) => ({ version_id: v.versionId, hash: v.hash, created_at: v.createdAt.toISOString(), runs: v.runs, current: v.current })),
      }
    },
  })

  app.get<{ Params: { dag: string; version: number } }>('/api/v1/dags/:dag/versions/:version', {
    config: { access: 'viewer' },
    schema: {
      summary: 'The YAML source of one version of a DAG',
      tags: ['dags'],
      security: SECURITY,
      params: {
        type: 'object',
        required: ['dag', 'version'],
        properties: { dag: { type: 'string', maxLength: 200 }, version: idNumber },
      },
      response: {
        200: {
          type: 'object',
          required: ['dag_id', 'version_id', 'hash', 'created_at', 'source'],
          properties: { dag_id: { type: 'string' }, version_id: { type: 'integer' }, hash: { type: 'string' }, created_at: time, source: { type: 'string' } },
        },
        ...errors(400, ...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const { dag, version } = request.params
      const found = await getDagVersionSource(db, dag, version)
      if (!found) return reply.code(404).send({ error: 'not_found', message: `DAG "${dag}" has no version ${version}` })
      return { dag_id: dag, version_id: version, hash: found.hash, created_at: found.createdAt.toISOString(), source: found.source }
    },
  })
}
