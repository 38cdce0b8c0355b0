/**
 * Feature views for the page (SPEC sections 4 and 7), read-only, for viewers:
 * - `GET /api/v1/feature_views`: every view with its current definition version, online rows and
 *   materialized intervals;
 * - `GET /api/v1/feature_views/{view}`: its definitions (normalized and as written), its materialized
 *   intervals with the gaps between them, and its online row count.
 * (The online lookups of SPEC section 7 are under /api/v1/features/{view}/online.)
 */
import type { FastifyInstance } from 'fastify'
import { countFeatureOnlineRows, listFeatureDefinitionSummaries, listFeatureViewSummaries, listMaterializedIntervals } from '../../store/feature-view-reads.ts'
import type { MaterializedInterval } from '../../store/feature-view-reads.ts'
import { isoOrNull } from '../../json-shapes.ts'
import type { WebContext } from '../context.ts'
import { AUTH_ERRORS, SECURITY, errors, time, timeOrNull } from '../schemas.ts'

const MAX_INTERVALS = 5000

const viewSummary = {
  type: 'object',
  required: ['name', 'definition_version', 'removed', 'online_rows', 'materialized_intervals', 'last_interval_end'],
  properties: {
    name: { type: 'string' },
    file: { type: ['string', 'null'] },
    definition_version: { type: 'integer', description: 'the current definition version' },
    removed: { type: 'boolean', description: 'its file is gone: it is no longer materialized, its history stays' },
    description: { type: ['string', 'null'] },
    owner: { type: ['string', 'null'] },
    tags: { type: 'array', items: { type: 'string' } },
    updated_at: time,
    online_rows: { type: 'integer', description: 'entities in the online store' },
    materialized_intervals: { type: 'integer', description: 'intervals materialized under the current definition' },
    last_interval_end: timeOrNull,
  },
} as const

const interval = {
  type: 'object',
  required: ['definition_version', 'start', 'end', 'rows'],
  properties: {
    definition_version: { type: 'integer' },
    start: time,
    end: time,
    rows: { type: 'integer' },
    online_rows: { type: ['integer', 'null'] },
    source: { type: 'object', properties: { dataset: { type: 'string' }, version: { type: 'integer' } } },
    produced_by: { type: ['object', 'null'], properties: { run_id: { type: 'string' }, task_id: { type: 'string' }, run_pruned: { type: 'boolean' } } },
    materialized_at: time,
  },
} as const

const viewParams = { type: 'object', required: ['view'], properties: { view: { type: 'string', maxLength: 64, pattern: '^[a-z][a-z0-9_]{0,63}$' } } } as const

export function featureViewRoutes(app: FastifyInstance, ctx: WebContext): void {
  const { db } = ctx

  app.get('/api/v1/feature_views', {
    config: { access: 'viewer' },
    schema: {
      summary: 'Feature views with their definition version, online rows and materialized intervals',
      tags: ['features'],
      security: SECURITY,
      response: { 200: { type: 'object', required: ['feature_views'], properties: { feature_views: { type: 'array', items: viewSummary } } }, ...errors(...AUTH_ERRORS) },
    },
    handler: async () => ({
      feature_views: (await listFeatureViewSummaries(db)).map((v) => ({
        name: v.name,
        file: v.file,
        definition_version: v.currentVersion,
        removed: v.removed,
        description: v.description,
        owner: v.owner,
        tags: v.tags,
        updated_at: v.updatedAt.toISOString(),
        online_rows: v.onlineRows,
        materialized_intervals: v.intervals,
        last_interval_end: isoOrNull(v.lastIntervalEnd),
      })),
    }),
  })

  app.get<{ Params: { view: string }; Querystring: { limit: number } }>('/api/v1/feature_views/:view', {
    config: { access: 'viewer' },
    schema: {
      summary: 'A feature view: definitions, materialized intervals (with the gaps between them) and online rows',
      tags: ['features'],
      security: SECURITY,
      params: viewParams,
      querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: MAX_INTERVALS, default: 1000 } }, additionalProperties: false },
      response: {
        200: {
          type: 'object',
          required: ['name', 'definition_version', 'online_rows', 'definitions', 'intervals', 'gaps'],
          properties: {
            ...viewSummary.properties,
            definitions: {
              type: 'array',
              description: 'newest first',
              items: {
                type: 'object',
                required: ['version', 'hash', 'definition', 'source', 'created_at'],
                properties: { version: { type: 'integer' }, hash: { type: 'string' }, definition: { type: 'object', additionalProperties: true }, source: { type: 'string' }, created_at: time },
              },
            },
            intervals: { type: 'array', items: interval, description: 'the newest `limit` intervals, oldest first' },
            gaps: {
              type: 'array',
              description: 'stretches between materialized intervals of one definition version that nothing covers',
              items: { type: 'object', required: ['definition_version', 'start', 'end'], properties: { definition_version: { type: 'integer' }, start: time, end: time } },
            },
          },
        },
        ...errors(400, ...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const { view } = request.params
      // One snapshot: a materialization records its interval and writes its online rows in one transaction.
      const found = await db.tx(async (q) => {
        const summary = (await listFeatureViewSummaries(q)).find((v) => v.name === view)
        if (!summary) return undefined
        return {
          summary,
          definitions: await listFeatureDefinitionSummaries(q, view),
          intervals: await listMaterializedIntervals(q, view, request.query.limit),
          onlineRows: await countFeatureOnlineRows(q, view),
        }
      }, { isolation: 'repeatable read' })
      if (!found) return reply.code(404).send({ error: 'not_found', message: `no feature view "${view}"` })
      const { summary, definitions, intervals, onlineRows } = found
      return {
        name: summary.name,
        file: summary.file,
        definition_version: summary.currentVersion,
        removed: summary.removed,
        description: summary.description,
        owner: summary.owner,
        tags: summary.tags,
        updated_at: summary.updatedAt.toISOString(),
        online_rows: onlineRows,
        materialized_intervals: summary.intervals,
        last_interval_end: isoOrNull(summary.lastIntervalEnd),
        definitions: definitions.map((d) => ({ version: d.version, hash: d.hash, definition: d.definition, source: d.source, created_at: d.createdAt.toISOString() })),
        ...intervalsJson(intervals),
      }
    },
  })
}

/** Intervals as JSON, and the gaps between consecutive intervals of each definition version. */
export function intervalsJson(intervals: readonly MaterializedInterval[]): { intervals: unknown[]; gaps: { definition_version: number; start: string; end: string }[] } {
  const gaps: { definition_version: number; start: string; end: string }[] = []
  const byVersion = new Map<number, MaterializedInterval[]>()
  for (const i of intervals) byVersion.set(i.definitionVersion, [...(byVersion.get(i.definitionVersion) ?? []), i])
  for (const [version, list] of byVersion) {
    const sorted = [...list].sort((a, b) => a.intervalStart.getTime() - b.intervalStart.getTime())
    let reach = sorted[0]?.intervalEnd.getTime()
    for (const i of sorted.slice(1)) {
      if (reach !== undefined && i.intervalStart.getTime() > reach) gaps.push({ definition_version: version, start: new Date(reach).toISOString(), end: i.intervalStart.toISOString() })
      reach = Math.max(reach ?? 0, i.intervalEnd.getTime())
    }
  }
  return {
    intervals: intervals.map((i) => ({
      definition_version: i.definitionVersion,
      start: i.intervalStart.toISOString(),
      end: i.intervalEnd.toISOString(),
      rows: i.rows,
      online_rows: i.onlineRows,
      source: { dataset: i.sourceDataset, version: i.sourceVersion },
      produced_by: i.runId !== null && i.taskId !== null ? { run_id: i.runId, task_id: i.taskId, run_pruned: i.runPruned } : null,
      materialized_at: i.materializedAt.toISOString(),
    })),
    gaps: gaps.sort((a, b) => a.start.localeCompare(b.start) || a.definition_version - b.definition_version),
  }
}
