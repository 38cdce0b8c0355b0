/**
 * Terminology
 * - DAG: one YAML file's workflow: tasks and their dependencies, a schedule, parameters.
 * - DAG version: the normalised spec of a DAG at one point in time; every run is pinned to one.
 * - run: one execution of a DAG for one logical date (data interval), scheduled, manual or backfill.
 * - task: a node of the DAG (an operator with params).
 * - task instance: a task within one run; it has a state and one or more attempts.
 * - attempt: one try of a task instance on a worker; retries make new attempts.
 * - operator: what a task does (shell, train, ...), registered in operators/index.ts.
 * - executor: where a training operator runs its processes (local, ssh, slurm).
 * - pool: a named limit on task instances running at once, across all runs.
 * - queue: a named line of work; a worker takes tasks only from the queues it serves (workers.queues).
 *
 * This file turns a validated DAG document into the normalised, defaults-applied spec that is
 * stored as a DAG version and read by the scheduler and workers.
 */
import type { Json } from './yaml-load.ts'
import type { ParamDefinitions } from './run-params.ts'
import type { TriggerRule } from '../state/trigger-rules.ts'
import { DEFAULT_TRIGGER_RULE } from '../state/trigger-rules.ts'
import { parseDuration } from '../time/duration.ts'
import { dependsOnList } from './dag-semantics.ts'

export type Catchup = 'none' | 'latest' | 'all'
export type RetryBackoff = 'fixed' | 'exponential'

export interface TaskSpec {
  id: string
  operator: string
  description?: string
  dependsOn: string[]
  triggerRule: TriggerRule
  /** Template or literal; absent means always run. */
  when?: string | boolean | number | null
  retries: number
  retryDelayMs: number
  retryBackoff: RetryBackoff
  maxRetryDelayMs: number
  /** Undefined: no timeout. */
  timeoutMs?: number
  priority: number
  pool: string
  /** The queue it is dispatched on: only workers serving it run it. */
  queue: string
  env: Record<string, string>
  params: Json
}

export interface DagSpec {
  id: string
  description?: string
  owner?: string
  tags: string[]
  /** The cron expression or preset (`schedule:` itself, or its `cron:`). */
  schedule?: string
  /** `schedule: { datasets }`: run when every one has a new version since the last such run. */
  scheduleDatasets?: string[]
  timezone: string
  startDate?: string
  endDate?: string
  catchup: Catchup
  maxActiveRuns: number
  maxActiveTasks: number
  pausedOnLoad: boolean
  params: ParamDefinitions
  /**
   * The names of `params` in file order (the trigger form follows it). Stored specs are jsonb, which
   * reorders object keys; specs stored before this field existed lack it.
   */
  paramOrder?: string[]
  /** In file order. */
  tasks: TaskSpec[]
}

/** `params` with its keys in file order (as far as the stored spec knows it). */
export function paramsInFileOrder(spec: Pick<DagSpec, 'params' | 'paramOrder'>): ParamDefinitions {
  const ordered: ParamDefinitions = {}
  for (const name of spec.paramOrder ?? []) if (Object.hasOwn(spec.params, name)) ordered[name] = spec.params[name]!
  for (const [name, definition] of Object.entries(spec.params)) if (!Object.hasOwn(ordered, name)) ordered[name] = definition
  return ordered
}

/** Defaults where the DAG and its `defaults:` say nothing (Airflow's, where it has one). */
export const TASK_DEFAULTS = {
  retries: 0,
  retryDelayMs: 5 * 60_000,
  retryBackoff: 'fixed' as RetryBackoff,
  maxRetryDelayMs: 60 * 60_000,
  priority: 0,
  pool: 'default',
  queue: 'default',
  triggerRule: DEFAULT_TRIGGER_RULE,
}

type Doc = { [key: string]: Json }
const str = (v: Json | undefined): string | undefined => (typeof v === 'string' ? v : undefined)
const int = (v: Json | undefined): number | undefined => (typeof v === 'number' && Number.isInteger(v) ? v : undefined)
const obj = (v: Json | undefined): Doc => (v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {})
const ms = (v: Json | undefined): number | undefined => (typeof v === 'string' ? parseDuration(v) : undefined)

/** Only call with a document that validated without errors. */
export function normalizeDag(doc: Doc): DagSpec {
  const defaults = obj(doc.defaults)
  const tasks = Object.entries(obj(doc.tasks)).map(([id, raw]): TaskSpec => {
    const task = obj(raw)
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries({ ...obj(defaults.env), ...obj(task.env) })) env[k] = String(v)
    const spec: TaskSpec = {
      id,
      operator: str(task.operator) ?? 'noop',
      dependsOn: dependsOnList(task.depends_on).map((d) => d.id),
      triggerRule: (str(task.trigger_rule) ?? str(defaults.trigger_rule) ?? TASK_DEFAULTS.triggerRule) as TriggerRule,
      retries: int(task.retries) ?? int(defaults.retries) ?? TASK_DEFAULTS.retries,
      retryDelayMs: ms(task.retry_delay) ?? ms(defaults.retry_delay) ?? TASK_DEFAULTS.retryDelayMs,
      retryBackoff: (str(task.retry_backoff) ?? str(defaults.retry_backoff) ?? TASK_DEFAULTS.retryBackoff) as RetryBackoff,
      maxRetryDelayMs: ms(task.max_retry_delay) ?? ms(defaults.max_retry_delay) ?? TASK_DEFAULTS.maxRetryDelayMs,
      priority: int(task.priority) ?? int(defaults.priority) ?? TASK_DEFAULTS.priority,
      pool: str(task.pool) ?? str(defaults.pool) ?? TASK_DEFAULTS.pool,
      queue: str(task.queue) ?? str(defaults.queue) ?? TASK_DEFAULTS.queue,
      env,
      params: task.params ?? {},
    }
    const timeoutMs = ms(task.timeout) ?? ms(defaults.timeout)
    if (timeoutMs !== undefined) spec.timeoutMs = timeoutMs
    if (typeof task.when === 'string' || typeof task.when === 'boolean' || typeof task.when === 'number' || task.when === null) spec.when = task.when
    if (typeof task.description === 'string') spec.description = task.description
    return spec
  })
  const dag: DagSpec = {
    id: str(doc.dag) ?? '',
    tags: Array.isArray(doc.tags) ? doc.tags.filter((t): t is string => typeof t === 'string') : [],
    timezone: str(doc.timezone) ?? 'UTC',
    catchup: (str(doc.catchup) ?? 'latest') as Catchup,
    maxActiveRuns: int(doc.max_active_runs) ?? 1,
    maxActiveTasks: int(doc.max_active_tasks) ?? 16,
    pausedOnLoad: doc.paused === true,
    params: obj(doc.params) as ParamDefinitions,
    paramOrder: Object.keys(obj(doc.params)),
    tasks,
  }
  for (const key of ['description', 'owner', 'schedule'] as const) {
    const value = str(doc[key])
    if (value !== undefined) dag[key] = value
  }
  const schedule = obj(doc.schedule)
  if (str(schedule.cron) !== undefined) dag.schedule = str(schedule.cron)!
  if (Array.isArray(schedule.datasets)) dag.scheduleDatasets = schedule.datasets.filter((d): d is string => typeof d === 'string')
  if (str(doc.start_date)) dag.startDate = str(doc.start_date)!
  if (str(doc.end_date)) dag.endDate = str(doc.end_date)!
  return dag
}
