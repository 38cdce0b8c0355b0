/**
 * The stored shape of a DAG version. cairn.dag_version.spec holds a DagSpec as JSON with a
 * `format` number, so a run queued before an upgrade of cairn still runs after it: a spec is
 * brought to the current shape when it is read, one format at a time.
 *
 * Changing DagSpec's shape (renaming, restructuring or adding a field without a default) means:
 * raise DAG_SPEC_FORMAT, and add to UPGRADES the function from the previous format to the new one.
 * A field added with a default gets it in withAddedDefaults, whatever the format (so an older cairn
 * still reads specs a newer one wrote, ignoring the field).
 */
import type { DagSpec } from './dag-model.ts'
import { TASK_DEFAULTS } from './dag-model.ts'

export const DAG_SPEC_FORMAT = 1

type Doc = Record<string, unknown>

/** UPGRADES[n] turns a spec of format n into format n + 1. */
const UPGRADES: Record<number, (spec: Doc) => Doc> = {
  // Format 0: written before specs carried a format. The same fields as format 1, but read
  // defensively: whatever a hand-edited or partial row lacks gets the default normalizeDag gives.
  0: (spec) => ({
    tags: [],
    timezone: 'UTC',
    catchup: 'latest',
    maxActiveRuns: 1,
    maxActiveTasks: 16,
    pausedOnLoad: false,
    params: {},
    ...spec,
    tasks: (Array.isArray(spec.tasks) ? (spec.tasks as Doc[]) : []).map((task) => ({
      operator: 'noop',
      dependsOn: [],
      triggerRule: TASK_DEFAULTS.triggerRule,
      retries: TASK_DEFAULTS.retries,
      retryDelayMs: TASK_DEFAULTS.retryDelayMs,
      retryBackoff: TASK_DEFAULTS.retryBackoff,
      maxRetryDelayMs: TASK_DEFAULTS.maxRetryDelayMs,
      priority: TASK_DEFAULTS.priority,
      pool: TASK_DEFAULTS.pool,
      env: {},
      params: {},
      ...task,
    })),
  }),
}

/** Task fields added after format 1 with a default: a spec stored before them reads as the default. */
function withAddedDefaults(spec: Doc): Doc {
  if (!Array.isArray(spec.tasks)) return spec
  return { ...spec, tasks: (spec.tasks as Doc[]).map((task) => ({ queue: TASK_DEFAULTS.queue, ...task })) }
}

/** What is stored for a DAG version (store/dag-sync-writes.ts). */
export function toStoredSpec(spec: DagSpec): Doc {
  return { format: DAG_SPEC_FORMAT, ...spec }
}

export type ReadSpec = { ok: true; spec: DagSpec; upgradedFrom: number | null } | { ok: false; message: string }

/** A stored spec in the current shape (without its `format`); refused when a newer cairn wrote it. */
export function readStoredSpec(stored: unknown): ReadSpec {
  if (stored === null || typeof stored !== 'object' || Array.isArray(stored)) return { ok: false, message: 'the stored spec is not an object' }
  const { format: rawFormat, ...rest } = stored as Doc
  const format = rawFormat === undefined ? 0 : rawFormat
  if (typeof format !== 'number' || !Number.isInteger(format) || format < 0) return { ok: false, message: `the stored spec has an unknown format ${JSON.stringify(rawFormat)}` }
  if (format > DAG_SPEC_FORMAT) return { ok: false, message: `the stored spec has format ${format}, written by a newer cairn (this one reads formats up to ${DAG_SPEC_FORMAT}); upgrade cairn` }
  let spec: Doc = rest
  for (let at = format; at < DAG_SPEC_FORMAT; at++) {
    const upgrade = UPGRADES[at]
    if (!upgrade) return { ok: false, message: `no upgrade from spec format ${at}` }
    spec = upgrade(spec)
  }
  spec = withAddedDefaults(spec)
  return { ok: true, spec: spec as unknown as DagSpec, upgradedFrom: format === DAG_SPEC_FORMAT ? null : format }
}
