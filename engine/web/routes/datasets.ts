/**
 * Datasets (SPEC section 7), read-only, for viewers:
 * - `GET /api/v1/datasets`: every dataset with its latest version, rows and when it last changed;
 * - `GET /api/v1/datasets/{name}/versions`: its versions, newest first, each with schema, rows, size,
 *   producer, inputs (lineage), expectation report and quarantined rows (the shape of
 *   `cairn datasets show --format json`);
 * - `GET /api/v1/datasets/{name}/versions/{version}/lineage`: the graph of what the version was made
 *   from, followed through inputs of inputs (bounded);
 * - `GET .../rows?limit` and `GET .../bad_rows?limit`: a preview of the first rows and of the rows
 *   quarantine kept aside, every value as text (as `cairn datasets export` writes it) or null.
 * Rows are read with DuckDB from the datasets directory of this web process (data.dir of cairn.yaml).
 */
import { extname, resolve, sep } from 'node:path'
import { access } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'
import { createDatasets, DATASET_NAME } from '../../data/datasets.ts'
import type { DatasetVersion } from '../../data/datasets.ts'
import { openDuckDb, parquetScan, sqlIdent, sqlString } from '../../data/duckdb.ts'
import type { DuckDbOptions } from '../../data/duckdb.ts'
import { textColumns } from '../../data/export-rows.ts'
import { listDatasetVersions, listDatasets, readDatasetVersion } from '../../store/datasets.ts'
import { lineage, MAX_LINEAGE_NODES } from '../dataset-lineage.ts'
import { featureSourceVersions } from '../../store/feature-view-reads.ts'
import { datasetJson, datasetVersionJson } from '../../json-shapes.ts'
import type { WebContext } from '../context.ts'
import { AUTH_ERRORS, MAX_PG_INTEGER, SECURITY, errors, time, timeOrNull } from '../schemas.ts'

const MAX_PREVIEW = 100
/** Source versions shown per feature view definition (the newest it was materialized from). */
const MAX_FEATURE_SOURCES = 5
const NO_DATA_DIR = { error: 'unavailable', message: 'this web server was started without a datasets directory' }

export interface WebDataSettings {
  /** The datasets directory (absolute). */
  dir: string
  duckdb?: DuckDbOptions
}

const column = { type: 'object', required: ['name', 'type'], properties: { name: { type: 'string' }, type: { type: 'string' } } } as const

const producedBy = {
  type: ['object', 'null'],
  properties: {
    run_id: { type: 'string' },
    task_id: { type: 'string' },
    run_pruned: { type: 'boolean', description: 'the run was deleted by `cairn db prune`; the version, its files and its lineage stay' },
  },
} as const

const datasetVersion = {
  type: 'object',
  required: ['name', 'version', 'rows', 'columns', 'created_at', 'produced_by', 'bytes', 'produced_kind', 'actor', 'inputs', 'expectations', 'bad_rows'],
  properties: {
    name: { type: 'string' },
    version: { type: 'integer' },
    rows: { type: 'integer' },
    columns: { type: 'array', items: column },
    created_at: time,
    produced_by: { ...producedBy, required: ['run_id', 'task_id', 'run_pruned'], description: 'the run and task that published it; null for `cairn datasets import`' },
    bytes: { type: 'integer' },
    produced_kind: { type: 'string', description: 'the operator type that made it (ingest, features.training_set, ...) or import' },
    actor: { type: ['string', 'null'], description: 'who imported it (null when a task made it)' },
    inputs: {
      type: 'array',
      description: 'lineage: the dataset versions and feature view definitions it was computed from',
      items: {
        type: 'object',
        properties: { dataset: { type: 'string' }, version: { type: 'integer' }, feature_view: { type: 'string' }, definition_version: { type: 'integer' } },
      },
    },
    expectations: { description: 'the expectation report of the task that made it (null: none)' },
    bad_rows: {
      type: ['object', 'null'],
      description: 'rows kept aside by on_bad_rows: quarantine (location: relative to the version folder)',
      properties: { count: { type: 'integer' }, location: { type: ['string', 'null'] } },
    },
  },
} as const

const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 64, pattern: DATASET_NAME.source } } } as const
const versionParams = {
  type: 'object',
  required: ['name', 'version'],
  properties: { name: nameParams.properties.name, version: { type: 'integer', minimum: 1, maximum: MAX_PG_INTEGER } },
} as const
const previewQuery = { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: MAX_PREVIEW, default: 20 } }, additionalProperties: false } as const
const textRows = { type: 'array', items: { type: 'array', items: { type: ['string', 'null'] } }, description: 'values as text (as `cairn datasets export` writes them) or null' } as const

export function datasetRoutes(app: FastifyInstance, ctx: WebContext, data: WebDataSettings | undefined): void {
  const { db } = ctx
  const notFound = (name: string, version?: number) => ({ error: 'not_found', message: version === undefined ? `no dataset "${name}"` : `dataset ${name} has no version ${version}` })
  const withFiles = (name: string, version: number): Promise<DatasetVersion | undefined> => createDatasets({ db, dir: data!.dir, producer: { kind: 'actor', actor: 'web' } }).get(name, version)

  app.get('/api/v1/datasets', {
    config: { access: 'viewer' },
    schema: {
      summary: 'Datasets with their latest version, rows and when they were last published',
      tags: ['datasets'],
      security: SECURITY,
      response: {
        200: {
          type: 'object',
          required: ['datasets'],
          properties: {
            datasets: {
              type: 'array',
              items: {
                type: 'object',
                required: ['name', 'version', 'rows', 'created_at', 'updated_at'],
                properties: { name: { type: 'string' }, version: { type: 'integer', description: 'the latest' }, rows: { type: ['integer', 'null'] }, created_at: time, updated_at: timeOrNull },
              },
            },
          },
        },
        ...errors(...AUTH_ERRORS),
      },
    },
    handler: async () => ({ datasets: (await listDatasets(db)).map(datasetJson) }),
  })

  app.get<{ Params: { name: string }; Querystring: { limit: number } }>('/api/v1/datasets/:name/versions', {
    config: { access: 'viewer' },
    schema: {
      summary: "A dataset's versions, newest first: schema, rows, producer, lineage, expectation report, bad rows",
      tags: ['datasets'],
      security: SECURITY,
      params: nameParams,
      querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } }, additionalProperties: false },
      response: {
        200: { type: 'object', required: ['name', 'latest_version', 'versions'], properties: { name: { type: 'string' }, latest_version: { type: 'integer' }, versions: { type: 'array', items: datasetVersion } } },
        ...errors(400, ...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const { name } = request.params
      const versions = await listDatasetVersions(db, name, request.query.limit)
      if (versions.length === 0) return reply.code(404).send(notFound(name))
      return { name, latest_version: versions[0]!.version, versions: versions.map(datasetVersionJson) }
    },
  })

  app.get<{ Params: { name: string; version: number } }>('/api/v1/datasets/:name/versions/:version/lineage', {
    config: { access: 'viewer' },
    schema: {
      summary: 'What a version was made from: dataset versions and feature views, through inputs of inputs',
      tags: ['datasets'],
      security: SECURITY,
      params: versionParams,
      response: {
        200: {
          type: 'object',
          required: ['nodes', 'edges', 'truncated'],
          properties: {
            nodes: {
              type: 'array',
              items: {
                type: 'object',
                required: ['id', 'kind', 'name'],
                properties: {
                  id: { type: 'string', description: 'dataset:NAME@N, feature_view:NAME@DEFINITION or source:NAME@N (the source of that version)' },
                  kind: { type: 'string', enum: ['dataset', 'feature_view', 'model', 'source'], description: 'source: where an ingest or an import read its rows (a file pattern, a URL, a connection); model: the model version predict.batch scored with' },
                  name: { type: 'string' },
                  version: { type: 'integer', description: 'dataset version, or feature view definition version' },
                  missing: { type: 'boolean', description: 'named as an input but not found' },
                  produced_kind: { type: 'string' },
                  produced_by: producedBy,
                  rows: { type: 'integer' },
                  created_at: time,
                },
              },
            },
            edges: { type: 'array', items: { type: 'object', required: ['from', 'to'], properties: { from: { type: 'string' }, to: { type: 'string' } } } },
            truncated: { type: 'boolean', description: `true when the graph has more than ${MAX_LINEAGE_NODES} nodes (the rest is left out)` },
          },
        },
        ...errors(400, ...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const { name, version } = request.params
      const root = await readDatasetVersion(db, name, version)
      if (!root) return reply.code(404).send(notFound(name, version))
      return lineage(root, (n, v) => readDatasetVersion(db, n, v), (view, definition) => featureSourceVersions(db, view, definition, MAX_FEATURE_SOURCES))
    },
  })

  app.get<{ Params: { name: string; version: number }; Querystring: { limit: number } }>('/api/v1/datasets/:name/versions/:version/rows', {
    config: { access: 'viewer' },
    schema: {
      summary: `The first rows of a version (at most ${MAX_PREVIEW}), values as text`,
      tags: ['datasets'],
      security: SECURITY,
      params: versionParams,
      querystring: previewQuery,
      response: {
        200: { type: 'object', required: ['name', 'version', 'columns', 'rows', 'total'], properties: { name: { type: 'string' }, version: { type: 'integer' }, columns: { type: 'array', items: column }, rows: textRows, total: { type: 'integer' } } },
        ...errors(400, ...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const { name, version } = request.params
      if (!data) return reply.code(503).send(NO_DATA_DIR)
      const found = await withFiles(name, version)
      if (!found) return reply.code(404).send(notFound(name, version))
      if (found.files.length === 0 || found.columns.length === 0) return { name, version, columns: found.columns, rows: [], total: found.rows }
      const rows = await query(data!, `SELECT ${textColumns(found.columns)} FROM ${parquetScan(found.files)} LIMIT ${request.query.limit}`)
      return { name, version, columns: found.columns, rows, total: found.rows }
    },
  })

  app.get<{ Params: { name: string; version: number }; Querystring: { limit: number } }>('/api/v1/datasets/:name/versions/:version/bad_rows', {
    config: { access: 'viewer' },
    schema: {
      summary: `The rows quarantine kept aside when the version was made (at most ${MAX_PREVIEW}), values as text`,
      tags: ['datasets'],
      security: SECURITY,
      params: versionParams,
      querystring: previewQuery,
      response: {
        200: {
          type: 'object',
          required: ['name', 'version', 'count', 'location', 'columns', 'rows'],
          properties: {
            name: { type: 'string' },
            version: { type: 'integer' },
            count: { type: 'integer' },
            location: { type: ['string', 'null'] },
            columns: { type: 'array', items: { type: 'string' } },
            rows: textRows,
            message: { type: 'string', description: 'why no rows are shown although some were kept (file missing or unreadable)' },
          },
        },
        ...errors(400, ...AUTH_ERRORS, 404),
      },
    },
    handler: async (request, reply) => {
      const { name, version } = request.params
      if (!data) return reply.code(503).send(NO_DATA_DIR)
      const found = await withFiles(name, version)
      if (!found) return reply.code(404).send(notFound(name, version))
      return { name, version, ...(await badRows(found, data!, request.query.limit)) }
    },
  })
}

async function query(data: WebDataSettings, sql: string): Promise<(string | null)[][]> {
  const duck = await openDuckDb({ threads: 1, ...data.duckdb })
  try {
    return (await duck.values(sql)) as (string | null)[][]
  } finally {
    duck.close()
  }
}

/** The quarantined rows: a file (Parquet, JSONL or CSV) inside the version folder, read defensively. */
async function badRows(v: DatasetVersion, data: WebDataSettings, limit: number): Promise<{ count: number; location: string | null; columns: string[]; rows: (string | null)[][]; message?: string }> {
  const kept = v.badRows
  const count = typeof kept?.count === 'number' ? kept.count : 0
  const location = typeof kept?.location === 'string' ? kept.location : null
  const sample = Array.isArray(kept?.sample) ? kept.sample : undefined
  const empty = { count, location, columns: [] as string[], rows: [] as (string | null)[][] }
  if (location === null) return sample ? { ...empty, ...sampleRows(sample, limit) } : empty
  // Relative to the version folder, or (as ingest writes it) to the datasets directory; either way
  // only a file inside the version's own folder is read.
  const folder = resolve(v.dir)
  const inside = [resolve(folder, location), resolve(data.dir, location)].filter((p) => p.startsWith(folder + sep))
  if (inside.length === 0) return { ...empty, message: 'the location of the bad rows is outside the version folder' }
  let path: string | undefined
  for (const candidate of inside) if (!path && (await access(candidate).then(() => true, () => false))) path = candidate
  if (!path) return { ...empty, message: `the file of the bad rows (${location}) is missing` }
  const ext = extname(path).toLowerCase()
  const scan = ext === '.parquet' ? `read_parquet(${sqlString(path)})`
    : ext === '.jsonl' || ext === '.ndjson' || ext === '.json' ? `read_json(${sqlString(path)}, format = 'newline_delimited')`
    : ext === '.csv' ? `read_csv(${sqlString(path)}, all_varchar = true, header = true)`
    : undefined
  if (!scan) return { ...empty, message: `the bad rows are in ${location}, a kind of file this page cannot read` }
  const duck = await openDuckDb({ threads: 1, ...data.duckdb })
  try {
    const described = await duck.rows<{ column_name: string }>(`DESCRIBE SELECT * FROM ${scan}`)
    const columns = described.map((c) => c.column_name)
    const select = columns.map((c) => `CAST(${sqlIdent(c)} AS VARCHAR) AS ${sqlIdent(c)}`).join(', ')
    const rows = (await duck.values(`SELECT ${select} FROM ${scan} LIMIT ${limit}`)) as (string | null)[][]
    return { count, location, columns, rows }
  } catch (error) {
    return { ...empty, message: `the bad rows could not be read: ${(error as Error).message}` }
  } finally {
    duck.close()
  }
}

function sampleRows(sample: unknown[], limit: number): { columns: string[]; rows: (string | null)[][] } {
  const objects = sample.slice(0, limit).filter((r): r is Record<string, unknown> => typeof r === 'object' && r !== null && !Array.isArray(r))
  const columns = [...new Set(objects.flatMap((o) => Object.keys(o)))]
  const text = (value: unknown): string | null => (value === null || value === undefined ? null : typeof value === 'string' ? value : JSON.stringify(value))
  return { columns, rows: objects.map((o) => columns.map((c) => text(o[c]))) }
}
