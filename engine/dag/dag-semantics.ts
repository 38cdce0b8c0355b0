/**
 * The second validation pass: what JSON Schema cannot say. Dependencies and cycles, cron and time
 * zone, dates, run parameter definitions, templates, and names that must exist in cairn.yaml.
 * It runs even when the schema pass found problems, so one run reports everything; every check
 * therefore tolerates values of the wrong type.
 */
import type { ErrorCode } from '../errors.ts'
import { buildTaskGraph, findCycles, lightGraph } from '../graph/task-graph.ts'
import { parseSchedule } from '../time/schedule.ts'
import { isRealCalendarDate, isValidTimezone, parseDagDate } from '../time/dates.ts'
import { findOperator, OPERATORS } from '../../operators/index.ts'
import { compileParam, isPlainlyValid } from './run-params.ts'
import { checkTemplates } from './template-refs.ts'
import { hasTemplate } from '../template/liquid.ts'
import { scriptTemplates } from '../template/script-env.ts'
import type { TemplateProblem } from './template-refs.ts'
import type { Json, PathSegment } from './yaml-load.ts'
import { formatPath } from './diagnostics.ts'
import { closest } from './suggest.ts'
import { readSchema } from './schemas.ts'
import { unknownModelServerMessage } from '../config/data-settings.ts'

export interface SemanticProblem {
  code: ErrorCode
  message: string
  path: PathSegment[]
  part?: 'key' | 'value'
  severity?: 'error' | 'warning'
  /** Set for template problems: row/col inside the string at `path`. */
  inString?: { row: number; col: number }
}

/** Names defined by the deployment's cairn.yaml, when the validator has one. */
export interface DeploymentNames {
  pools: ReadonlySet<string>
  clusters: ReadonlySet<string>
  /** The queues cairn.yaml lists (workers.queues); undefined: any name is accepted. */
  queues?: ReadonlySet<string>
  /** The model servers serve.rollout may name (`default` and model_servers); undefined: any name is accepted. */
  modelServers?: ReadonlySet<string>
}

/** DeploymentNames as plain arrays, to hand to a worker thread. */
export interface PlainDeploymentNames {
  pools: string[]
  clusters: string[]
  queues?: string[]
  modelServers?: string[]
}

export function toPlainNames(names: DeploymentNames): PlainDeploymentNames {
  return {
    pools: [...names.pools],
    clusters: [...names.clusters],
    ...(names.queues ? { queues: [...names.queues] } : {}),
    ...(names.modelServers ? { modelServers: [...names.modelServers] } : {}),
  }
}

export function fromPlainNames(names: PlainDeploymentNames): DeploymentNames {
  return {
    pools: new Set(names.pools),
    clusters: new Set(names.clusters),
    ...(names.queues ? { queues: new Set(names.queues) } : {}),
    ...(names.modelServers ? { modelServers: new Set(names.modelServers) } : {}),
  }
}

type JsonObject = { [key: string]: Json }

const EMPTY: readonly Json[] = []
const EMPTY_KEYS: readonly string[] = []

const isObject = (value: Json | undefined): value is JsonObject => value !== null && typeof value === 'object' && !Array.isArray(value)

export function dependsOnList(value: Json | undefined): { id: string; path: PathSegment[] }[] {
  if (typeof value === 'string') return [{ id: value, path: [] }]
  if (Array.isArray(value)) return value.flatMap((item, i) => (typeof item === 'string' ? [{ id: item, path: [i] }] : []))
  return []
}

export function checkDagSemantics(doc: Json, names?: DeploymentNames): SemanticProblem[] {
  const problems: SemanticProblem[] = []
  if (!isObject(doc)) return problems
  checkTiming(doc, problems)
  const params = checkParamDefinitions(doc.params, problems)
  const tasks = isObject(doc.tasks) ? doc.tasks : {}
  const taskIds = Object.keys(tasks)
  const taskSet = new Set(taskIds)

  const nodes: { id: string; dependsOn: string[] }[] = new Array(taskIds.length)
  for (let t = 0; t < taskIds.length; t++) {
    const id = taskIds[t]!
    const task = tasks[id]
    const raw = isObject(task) ? task.depends_on : undefined
    const list = typeof raw === 'string' ? [raw] : Array.isArray(raw) ? raw : EMPTY
    // The dependencies that are strings, in order (problems included): the list itself when all of
    // them are, as nearly always; otherwise a copy without the others.
    let strings = true
    for (let i = 0; i < list.length && strings; i++) strings = typeof list[i] === 'string'
    const dependsOn = strings ? (list as string[]) : []
    for (let i = 0; i < list.length; i++) {
      const dep = list[i]
      if (typeof dep !== 'string') continue
      if (dep === id || !taskSet.has(dep) || (strings ? list.indexOf(dep) < i : dependsOn.includes(dep))) {
        // The rare case: a problem, with its place (a lone string has no index).
        const path = typeof raw === 'string' ? ['tasks', id, 'depends_on'] : ['tasks', id, 'depends_on', i]
        if (dep === id) problems.push({ code: 'SELF_DEPENDENCY', message: `task "${id}" depends on itself`, path })
        else if (!taskSet.has(dep)) {
          const hint = closest(dep, taskIds)
          problems.push({ code: 'UNKNOWN_DEPENDENCY', message: `task "${id}" depends on "${dep}", which is not a task of this DAG${hint ? ` (did you mean "${hint}"?)` : ''}`, path })
        } else problems.push({ code: 'DUPLICATE_DEPENDENCY', message: `task "${id}" lists "${dep}" twice in depends_on`, path, severity: 'warning' })
      }
      if (!strings) dependsOn.push(dep)
    }
    nodes[t] = { id, dependsOn }
  }
  const graph = lightGraph(nodes)
  for (const cycle of graph.acyclic ? [] : findCycles(buildTaskGraph(nodes), taskIds)) {
    const start = cycle[0]!
    const closing = cycle[cycle.length - 2]!
    const deps = isObject(tasks[start]) ? dependsOnList((tasks[start] as JsonObject).depends_on) : []
    const entry = deps.find((d) => d.id === closing)
    problems.push({
      code: 'DEPENDENCY_CYCLE',
      message: `dependency cycle: ${cycle.join(' -> ')}`,
      path: ['tasks', start, 'depends_on', ...(entry?.path ?? [])],
    })
  }

  const templateProblems: TemplateProblem[] = []
  const defaults = isObject(doc.defaults) ? doc.defaults : undefined
  if (defaults) {
    if (defaults.env !== undefined) checkTemplates(defaults.env, ['defaults', 'env'], { params, tasks: taskSet, isUpstream: undefined, taskId: undefined }, templateProblems)
    if (defaults.pool !== undefined) checkPool(defaults.pool, ['defaults', 'pool'], names, problems)
    if (defaults.queue !== undefined) checkQueue(defaults.queue, ['defaults', 'queue'], names, problems)
  }
  const downstream = graph.descendants
  for (let i = 0; i < taskIds.length; i++) {
    const id = taskIds[i]!
    const task = tasks[id]
    if (!isObject(task)) continue
    checkOperator(task, id, names, problems)
    const direct = nodes[i]!.dependsOn
    const operator = typeof task.operator === 'string' ? findOperator(task.operator) : undefined
    const literal = operator?.literalParams ?? EMPTY_KEYS
    if (operator?.checkParams) for (const p of operator.checkParams(task.params ?? null)) problems.push({ code: p.code, message: p.message, path: ['tasks', id, 'params', ...p.path] })
    const taskParams = isObject(task.params) ? task.params : undefined
    for (const key of literal) {
      const value = taskParams?.[key]
      if (typeof value === 'string' && hasTemplate(value)) {
        const found = scriptTemplates(value)
        if (!found.ok) problems.push({ code: 'TEMPLATE_NOT_ALLOWED', message: `params.${key}: ${found.message}`, path: ['tasks', id, 'params', key] })
      }
    }
    if (task.params !== undefined || task.env !== undefined || task.when !== undefined) {
      const scope = { params, tasks: taskSet, isUpstream: (other: string) => (other !== id && direct.includes(other)) || downstream(other).has(id), taskId: id }
      // One path for the three walks (each leaves it as it found it; problems copy it).
      const path: PathSegment[] = ['tasks', id, 'params']
      checkTemplates(task.params, path, scope, templateProblems)
      path[2] = 'env'
      checkTemplates(task.env, path, scope, templateProblems)
      path[2] = 'when'
      checkTemplates(task.when, path, scope, templateProblems)
    }
    if (task.pool !== undefined) checkPool(task.pool, ['tasks', id, 'pool'], names, problems)
    if (task.queue !== undefined) checkQueue(task.queue, ['tasks', id, 'queue'], names, problems)
  }
  checkLiteralTemplates(doc, [], problems)
  for (const t of templateProblems) problems.push({ code: t.code, message: t.message, path: t.path, inString: { row: t.row, col: t.col } })
  return problems
}

function checkTiming(doc: JsonObject, problems: SemanticProblem[]): void {
  const timezone = typeof doc.timezone === 'string' ? doc.timezone : 'UTC'
  if (typeof doc.timezone === 'string' && !isValidTimezone(doc.timezone)) {
    problems.push({ code: 'INVALID_TIMEZONE', message: `timezone "${doc.timezone}" is not an IANA time zone name (such as Europe/Berlin or UTC)`, path: ['timezone'] })
  }
  const schedule = doc.schedule
  const cron = typeof schedule === 'string' ? { text: schedule, path: ['schedule'] } : isObject(schedule) && typeof schedule.cron === 'string' ? { text: schedule.cron, path: ['schedule', 'cron'] } : undefined
  if (cron) {
    const parsed = parseSchedule(cron.text, isValidTimezone(timezone) ? timezone : 'UTC')
    if (!parsed.ok) problems.push({ code: 'INVALID_CRON', message: `schedule ${parsed.message}`, path: cron.path })
    if (doc.start_date === undefined) {
      problems.push({ code: 'MISSING_START_DATE', message: 'a DAG with a schedule needs a start_date (the first data interval starts there)', path: ['schedule'], part: 'key' })
    }
  }
  const dates: Partial<Record<'start_date' | 'end_date', Date>> = {}
  // Their order needs instants in the DAG's zone; a lone date only needs to exist.
  const both = typeof doc.start_date === 'string' && typeof doc.end_date === 'string'
  for (const key of ['start_date', 'end_date'] as const) {
    const text = doc[key]
    if (typeof text !== 'string') continue
    const real = both ? undefined : isRealCalendarDate(text)
    if (real === true) continue
    const date = real === false ? undefined : parseDagDate(text, timezone)
    // Malformed text is a schema error already; here only well-formed but impossible dates remain.
    if (date === undefined) {
      if (/^\d{4}-\d{2}-\d{2}/.test(text)) problems.push({ code: 'INVALID_DATE', message: `${key} "${text}" is not a real date or time`, path: [key] })
    } else dates[key] = date
  }
  if (dates.start_date && dates.end_date && dates.start_date.getTime() >= dates.end_date.getTime()) {
    problems.push({ code: 'DATE_ORDER', message: `end_date (${String(doc.end_date)}) must be after start_date (${String(doc.start_date)})`, path: ['end_date'] })
  }
}

/** Where templates are rendered (SPEC section 2): a task's params, env and when, and the defaults' env. */
function isRendered(path: readonly PathSegment[]): boolean {
  if (path[0] === 'tasks') return path.length >= 3 && (path[2] === 'params' || path[2] === 'env' || path[2] === 'when')
  return path[0] === 'defaults' && path[1] === 'env'
}

/** A template anywhere else would reach the user unrendered, e.g. a description saying "{{ ds }}". */
function checkLiteralTemplates(value: Json | undefined, path: PathSegment[], problems: SemanticProblem[]): void {
  if (isRendered(path)) return
  if (typeof value === 'string') {
    if (!value.includes('{')) return
    const output = value.indexOf('{{')
    const tag = value.indexOf('{%')
    const index = output < 0 ? tag : tag < 0 ? output : Math.min(output, tag)
    if (index < 0) return
    const before = value.slice(0, index)
    const row = before.split('\n').length
    const col = index - before.lastIndexOf('\n')
    problems.push({
      code: 'TEMPLATE_NOT_ALLOWED',
      message: `${formatPath(path)}: templates are rendered only in params, env and when; here the text would stay as written`,
      path: [...path],
      inString: { row, col },
    })
  } else if (Array.isArray(value)) {
    // One path array for the whole walk, copied only into a problem: most documents have none.
    for (let i = 0; i < value.length; i++) {
      if (cannotHoldTemplate(value[i]!)) continue
      path.push(i)
      checkLiteralTemplates(value[i], path, problems)
      path.pop()
    }
  } else if (isObject(value)) {
    for (const key in value) {
      if (cannotHoldTemplate(value[key]!)) continue
      path.push(key)
      checkLiteralTemplates(value[key], path, problems)
      path.pop()
    }
  }
}

/** Numbers, booleans, null and strings without a brace: the walk need not visit them. */
function cannotHoldTemplate(value: Json): boolean {
  return typeof value === 'string' ? !value.includes('{') : value === null || typeof value !== 'object'
}

/** Keys a run parameter definition may use; others are reported by the schema pass, not compiled. */
let paramKeys: ReadonlySet<string> | undefined
function knownParamKeys(): ReadonlySet<string> {
  paramKeys ??= new Set(Object.keys((readSchema('dag.schema.json') as { $defs: { paramDefinition: { properties: object } } }).$defs.paramDefinition.properties))
  return paramKeys
}

function checkParamDefinitions(value: Json | undefined, problems: SemanticProblem[]): Set<string> {
  const names = new Set<string>()
  if (!isObject(value)) return names
  for (const [name, definition] of Object.entries(value)) {
    names.add(name)
    if (!isObject(definition)) continue
    // Unknown keys are the schema pass's report; compiling them would only repeat it less clearly.
    if (Object.keys(definition).some((key) => !knownParamKeys().has(key))) continue
    if (isPlainlyValid(definition)) continue
    const validate = compileParam(definition)
    if (typeof validate !== 'function') {
      problems.push({ code: validate.code, message: `params.${name}: ${validate.message}`, path: ['params', name], part: 'key' })
      continue
    }
    if (Object.hasOwn(definition, 'default') && !validate(definition.default)) {
      const why = (validate.errors ?? []).map((e) => `${e.instancePath ? `${e.instancePath} ` : ''}${e.message}`).join('; ')
      problems.push({ code: 'INVALID_PARAM_DEFAULT', message: `params.${name}: default ${JSON.stringify(definition.default)} does not satisfy its own definition: ${why}`, path: ['params', name, 'default'] })
    }
  }
  return names
}

function checkOperator(task: JsonObject, id: string, names: DeploymentNames | undefined, problems: SemanticProblem[]): void {
  if (typeof task.operator !== 'string') return
  const operator = findOperator(task.operator)
  if (!operator) {
    const known = Object.keys(OPERATORS)
    const hint = closest(task.operator, known)
    problems.push({
      code: 'UNKNOWN_OPERATOR',
      message: `unknown operator "${task.operator}" in task "${id}"${hint ? ` (did you mean "${hint}"?)` : ''}; known: ${known.join(', ')}`,
      path: ['tasks', id, 'operator'],
    })
    return
  }
  const cluster = isObject(task.params) ? task.params.cluster : undefined
  if (names && typeof cluster === 'string' && !names.clusters.has(cluster)) {
    problems.push({ code: 'UNKNOWN_CLUSTER', message: `cluster "${cluster}" is not defined in cairn.yaml (defined: ${[...names.clusters].join(', ') || 'none'})`, path: ['tasks', id, 'params', 'cluster'] })
  }
  // A name the schema refuses is reported once, by the schema.
  const server = task.operator === 'serve.rollout' && isObject(task.params) ? task.params.server : undefined
  if (names?.modelServers && typeof server === 'string' && /^[a-z][a-z0-9_-]{0,63}$/.test(server) && !names.modelServers.has(server)) {
    problems.push({ code: 'UNKNOWN_MODEL_SERVER', message: unknownModelServerMessage(server, [...names.modelServers]), path: ['tasks', id, 'params', 'server'] })
  }
}

function checkPool(pool: Json | undefined, path: PathSegment[], names: DeploymentNames | undefined, problems: SemanticProblem[]): void {
  if (!names || typeof pool !== 'string' || pool === 'default' || names.pools.has(pool)) return
  problems.push({ code: 'UNKNOWN_POOL', message: `pool "${pool}" is not defined in cairn.yaml (defined: default${[...names.pools].map((p) => `, ${p}`).join('')})`, path })
}

function checkQueue(queue: Json | undefined, path: PathSegment[], names: DeploymentNames | undefined, problems: SemanticProblem[]): void {
  // `default` always exists, as for pools (a task that names no queue is on it). A name the schema
  // refuses is reported once, by the schema.
  if (!names?.queues || typeof queue !== 'string' || queue === 'default' || names.queues.has(queue) || !/^[a-z][a-z0-9_-]{0,63}$/.test(queue)) return
  const listed = ['default', ...[...names.queues].filter((q) => q !== 'default')]
  problems.push({ code: 'UNKNOWN_QUEUE', message: `queue "${queue}" is not listed in cairn.yaml workers.queues (known: ${listed.join(', ')})`, path })
}
