/**
 * A feature view's definition in the normalized form stored in cairn.feature_view_definition and read
 * by workers: durations in milliseconds, the entity always a list, features in file order. Its hash
 * (sha256 of the JSON text) decides whether a changed file makes a new definition version; the
 * descriptive keys (description, owner, tags) are not part of it, since they change nothing computed.
 */
import { createHash } from 'node:crypto'
import { parseDuration } from '../time/duration.ts'

export const FEATURE_AGGS = ['sum', 'count', 'avg', 'min', 'max', 'last', 'first', 'count_distinct', 'stddev'] as const
export type FeatureAgg = (typeof FEATURE_AGGS)[number]

export interface FeatureSpec {
  name: string
  agg: FeatureAgg
  /** Source column; null for `count` without one (counts rows). */
  column: string | null
  /** Trailing window [end - window, end); null = the whole history before end. */
  window_ms: number | null
}

export interface FeatureViewDefinition {
  entity: string[]
  source: string
  timestamp: string
  /** Values whose feature timestamp is before t - ttl are read as null; null = no limit. */
  ttl_ms: number | null
  online: boolean
  features: FeatureSpec[]
}

/** A valid feature view file, normalized (what the DAG sync stores). */
export interface LoadedFeatureView {
  name: string
  hash: string
  /** The normalized definition as JSON text. */
  definitionJson: string
  description: string | null
  owner: string | null
  tags: string[]
}

/** The column every offline row carries: the interval end the row was materialized for. */
export const FEATURE_TIMESTAMP = 'feature_timestamp'

/** Normalizes a feature view document that passed its JSON Schema. */
export function normalizeFeatureView(value: Record<string, unknown>): LoadedFeatureView {
  const entity = typeof value.entity === 'string' ? [value.entity] : [...(value.entity as string[])]
  const features: FeatureSpec[] = []
  for (const [name, raw] of Object.entries(value.features as Record<string, Record<string, unknown>>)) {
    const window = typeof raw.window === 'string' ? parseDuration(raw.window) : undefined
    features.push({ name, agg: raw.agg as FeatureAgg, column: typeof raw.column === 'string' ? raw.column : null, window_ms: window ?? null })
  }
  const ttl = typeof value.ttl === 'string' ? parseDuration(value.ttl) : undefined
  const definition: FeatureViewDefinition = {
    entity,
    source: value.source as string,
    timestamp: value.timestamp as string,
    ttl_ms: ttl ?? null,
    online: value.online === true,
    features,
  }
  const definitionJson = JSON.stringify(definition)
  return {
    name: value.feature_view as string,
    hash: createHash('sha256').update(definitionJson).digest('hex'),
    definitionJson,
    description: typeof value.description === 'string' ? value.description : null,
    owner: typeof value.owner === 'string' ? value.owner : null,
    tags: Array.isArray(value.tags) ? value.tags.filter((t): t is string => typeof t === 'string') : [],
  }
}

/**
 * Problems a definition has that its JSON Schema cannot see (column names that would collide in the
 * offline rows); checked when a worker materializes, reported as the task's failure.
 */
export function definitionProblems(d: FeatureViewDefinition): string[] {
  const problems: string[] = []
  const entity = new Set(d.entity)
  if (entity.has(FEATURE_TIMESTAMP)) problems.push(`an entity column cannot be named ${FEATURE_TIMESTAMP} (the offline rows carry that column)`)
  for (const f of d.features) {
    if (f.name === FEATURE_TIMESTAMP) problems.push(`a feature cannot be named ${FEATURE_TIMESTAMP}`)
    if (entity.has(f.name)) problems.push(`feature ${f.name} has the name of an entity column`)
    if (f.window_ms === 0) problems.push(`feature ${f.name}: a window of 0 covers no rows`)
  }
  return problems
}
