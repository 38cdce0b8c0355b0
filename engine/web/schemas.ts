/**
 * JSON Schemas shared by the routes (Fastify validates requests and serialises responses with them;
 * @fastify/swagger publishes them as OpenAPI components). Timestamps are ISO-8601 UTC with milliseconds,
 * null until known. Fields may be added, never renamed.
 */
import { RUN_STATE_LIST, TASK_STATE_LIST } from '../state/states.ts'
import { NAME_PATTERN, ROLES } from './auth/roles.ts'

export const time = { type: 'string', format: 'date-time' } as const
export const timeOrNull = { type: ['string', 'null'], format: 'date-time' } as const

export const SHARED_SCHEMAS = [
  {
    $id: 'Error',
    type: 'object',
    description: 'What went wrong: a stable code and a message for people.',
    required: ['error', 'message'],
    properties: {
      error: { type: 'string', description: 'stable code, e.g. unauthorized, forbidden, csrf, not_found, invalid_params' },
      message: { type: 'string' },
      errors: { type: 'array', items: { type: 'string' }, description: 'one entry per problem, when there are several' },
    },
  },
  {
    $id: 'Run',
    type: 'object',
    required: ['run_id', 'dag_id', 'state', 'run_type', 'logical_date', 'queued_at', 'started_at', 'ended_at'],
    properties: {
      run_id: { type: 'string' },
      dag_id: { type: 'string' },
      state: { type: 'string', enum: [...RUN_STATE_LIST] },
      run_type: { type: 'string', enum: ['scheduled', 'manual', 'backfill', 'dataset'] },
      logical_date: time,
      data_interval_start: time,
      data_interval_end: time,
      queued_at: time,
      started_at: timeOrNull,
      ended_at: timeOrNull,
      params: { type: 'object', additionalProperties: true },
    },
  },
  {
    $id: 'TaskInstance',
    type: 'object',
    required: ['task_id', 'state', 'attempts', 'started_at', 'ended_at'],
    properties: {
      task_id: { type: 'string' },
      state: { type: 'string', enum: [...TASK_STATE_LIST] },
      attempts: { type: 'integer', description: 'number of the latest attempt (0: not tried yet)' },
      failures: { type: 'integer' },
      operator: { type: ['string', 'null'] },
      depends_on: { type: 'array', items: { type: 'string' } },
      pool: { type: 'string' },
      queued_at: timeOrNull,
      started_at: timeOrNull,
      ended_at: timeOrNull,
      next_retry_at: timeOrNull,
      failure_kind: { type: ['string', 'null'] },
      message: { type: ['string', 'null'] },
      outputs: { type: ['object', 'null'], additionalProperties: true },
    },
  },
  {
    $id: 'Diagnostic',
    type: 'object',
    properties: {
      file: { type: 'string' },
      line: { type: 'integer' },
      column: { type: 'integer' },
      path: { type: 'string' },
      code: { type: 'string' },
      message: { type: 'string' },
      severity: { type: 'string', enum: ['error', 'warning'] },
    },
  },
  {
    $id: 'LogLine',
    type: 'object',
    required: ['id', 'attempt', 'stream', 'line', 'at'],
    properties: {
      id: { type: 'integer', description: "the line's number within its attempt, from 1 (with `dropped`: the last number left out)" },
      attempt: { type: 'integer' },
      stream: { type: 'string', enum: ['stdout', 'stderr', 'log'] },
      line: { type: 'string' },
      at: time,
      dropped: {
        type: 'object',
        description: "only on the line standing for lines the attempt's log cap (workers.max_log_bytes) left out",
        required: ['lines', 'bytes'],
        properties: { lines: { type: 'integer' }, bytes: { type: ['integer', 'null'], description: 'null when not known' } },
      },
    },
  },
  {
    $id: 'User',
    type: 'object',
    required: ['username', 'role', 'disabled', 'created_at'],
    properties: {
      username: { type: 'string', pattern: NAME_PATTERN },
      role: { type: 'string', enum: [...ROLES] },
      disabled: { type: 'boolean' },
      created_at: time,
    },
  },
  {
    $id: 'Token',
    type: 'object',
    description: 'An API token; the secret itself is never shown again after creation',
    required: ['name', 'role', 'state', 'created_at', 'created_by', 'owner', 'expires_at', 'last_used_at', 'revoked_at'],
    properties: {
      name: { type: 'string', pattern: NAME_PATTERN },
      role: { type: 'string', enum: [...ROLES] },
      state: { type: 'string', enum: ['active', 'expired', 'revoked', 'owner_disabled'] },
      created_at: time,
      created_by: { type: ['string', 'null'] },
      owner: { type: ['string', 'null'], description: 'the user it belongs to; disabling that user stops it' },
      expires_at: timeOrNull,
      last_used_at: { ...timeOrNull, description: 'recorded at most once a minute' },
      revoked_at: timeOrNull,
    },
  },
] as const

/**
 * Numbers in paths and query strings. Ids stored as bigint stay within what a JavaScript number holds
 * exactly; counters stored as integer (attempt numbers) within Postgres' integer. Beyond them a value
 * would reach Postgres as an out-of-range literal (a 500); the schema turns it into a 400.
 */
export const MAX_ID = Number.MAX_SAFE_INTEGER
export const MAX_PG_INTEGER = 2_147_483_647
export const idNumber = { type: 'integer', minimum: 1, maximum: MAX_ID } as const

/** Path parameters naming a DAG or a run. */
/**
 * A yes/no query parameter. Given bare (`?follow`), or as true/1/yes/on, it is on; false/0/no/off, or
 * absent, it is off (case-insensitive). Read it with queryFlag().
 */
export const queryFlag = (description: string) =>
  ({ type: 'string', pattern: '^(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0|[Yy][Ee][Ss]|[Nn][Oo]|[Oo][Nn]|[Oo][Ff][Ff]|)$', description: `${description} (a flag: bare, true, 1, yes or on; false, 0, no or off)` }) as const

export function queryFlagValue(value: string | undefined): boolean {
  return value !== undefined && !['false', '0', 'no', 'off'].includes(value.toLowerCase())
}

export const dagParams = { type: 'object', required: ['dag'], properties: { dag: { type: 'string', maxLength: 200 } } } as const
export const runParams = { type: 'object', required: ['run'], properties: { run: { type: 'string', maxLength: 300 } } } as const

export const ref = (id: (typeof SHARED_SCHEMAS)[number]['$id']) => ({ $ref: `${id}#` }) as const

/** Error responses of a route, by status code. */
export function errors(...codes: number[]): Record<number, { $ref: string }> {
  return Object.fromEntries(codes.map((code) => [code, ref('Error')]))
}

/** Every authenticated route can answer 401, 403 and 503 (database unreachable). */
export const AUTH_ERRORS = [401, 403, 503] as const

export const SECURITY: { [scheme: string]: string[] }[] = [{ bearerAuth: [] }, { sessionCookie: [] }]
