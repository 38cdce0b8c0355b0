/**
 * Static checks of the `{{ ... }}` templates in a task's params, env and when: they parse, and every
 * variable they read exists for that task (declared params, outputs of upstream tasks only).
 */
import type { ErrorCode } from '../errors.ts'
import { analyzeTemplate, hasTemplate } from '../template/liquid.ts'
import type { TemplateReference } from '../template/liquid.ts'
import type { Json, PathSegment } from './yaml-load.ts'

export interface TemplateScope {
  params: ReadonlySet<string>
  tasks: ReadonlySet<string>
  /** Whether this template may read the task's outputs; undefined where no task outputs are available (defaults). */
  isUpstream: ((task: string) => boolean) | undefined
  taskId: string | undefined
}

export interface TemplateProblem {
  code: ErrorCode
  message: string
  path: PathSegment[]
  /** Row and column inside the string value, to be mapped onto the source. */
  row: number
  col: number
}

const FIXED: Record<string, readonly string[] | null> = {
  dag: ['id'],
  run: ['id', 'logical_date', 'data_interval_start', 'data_interval_end', 'is_latest'],
  task: ['id', 'attempt'],
  ds: null,
  ds_nodash: null,
}
/** The default of checkTemplates' skipKeys: one array, not a new one per call of the walk. */
const NO_KEYS: readonly string[] = []
const ROOTS = [...Object.keys(FIXED), 'params', 'tasks', 'secrets']

/**
 * Visits every string under `value` (recursively) and checks each one that holds a template. Keys of
 * `value` listed in `skipKeys` are left out (params an operator runs as written). `path` is used as a
 * stack during the walk and copied into each problem.
 */
export function checkTemplates(value: Json | undefined, path: PathSegment[], scope: TemplateScope, out: TemplateProblem[], skipKeys: readonly string[] = NO_KEYS): void {
  if (typeof value === 'string') {
    if (hasTemplate(value)) checkOne(value, path, scope, out)
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i)
      checkTemplates(value[i], path, scope, out)
      path.pop()
    }
  } else if (value !== null && typeof value === 'object') {
    for (const key in value) {
      if (skipKeys.length > 0 && skipKeys.includes(key)) continue
      path.push(key)
      checkTemplates(value[key], path, scope, out)
      path.pop()
    }
  }
}

function checkOne(text: string, path: PathSegment[], scope: TemplateScope, out: TemplateProblem[]): void {
  const analysis = analyzeTemplate(text)
  if (!analysis.ok) {
    out.push({ code: 'TEMPLATE_SYNTAX', message: `template does not parse: ${analysis.message}`, path: [...path], row: analysis.row, col: analysis.col })
    return
  }
  for (const reference of analysis.references) {
    const problem = checkReference(reference, scope)
    if (problem) out.push({ ...problem, path: [...path], row: reference.row, col: reference.col })
  }
}

function checkReference(reference: TemplateReference, scope: TemplateScope): { code: ErrorCode; message: string } | undefined {
  const segments = reference.segments
  const root = segments[0]
  const first = segments[1]
  const second = segments[2]
  const third = segments[3]
  if (typeof root !== 'string' || !ROOTS.includes(root)) {
    return { code: 'TEMPLATE_UNKNOWN_VARIABLE', message: `unknown template variable "${String(root)}"; available: ${ROOTS.join(', ')}` }
  }
  const fixed = FIXED[root]
  if (fixed !== undefined) {
    if (fixed === null) {
      return first === undefined ? undefined : { code: 'TEMPLATE_UNKNOWN_VARIABLE', message: `"${root}" is a string; "${segments.join('.')}" does not exist` }
    }
    if (first === undefined || !fixed.includes(String(first))) {
      return { code: 'TEMPLATE_UNKNOWN_VARIABLE', message: `unknown template variable "${segments.join('.')}"; ${root} has ${fixed.map((f) => `${root}.${f}`).join(', ')}` }
    }
    return undefined
  }
  if (root === 'params') {
    if (first === undefined) return { code: 'TEMPLATE_BAD_REFERENCE', message: 'use params.NAME, not params on its own' }
    if (!scope.params.has(String(first))) {
      const declared = [...scope.params].join(', ') || 'none'
      return { code: 'TEMPLATE_UNKNOWN_PARAM', message: `params.${String(first)} is not declared in the DAG's params (declared: ${declared})` }
    }
    return undefined
  }
  if (root === 'secrets') {
    return first === undefined ? { code: 'TEMPLATE_BAD_REFERENCE', message: 'use secrets.NAME, not secrets on its own' } : undefined
  }
  // tasks.T.outputs.K
  if (first === undefined || second !== 'outputs' || third === undefined) {
    return { code: 'TEMPLATE_BAD_REFERENCE', message: `"${segments.join('.')}" must have the form tasks.TASK.outputs.KEY` }
  }
  const task = String(first)
  if (!scope.tasks.has(task)) return { code: 'TEMPLATE_UNKNOWN_TASK', message: `tasks.${task}: the DAG has no task "${task}"` }
  if (scope.isUpstream === undefined) {
    return { code: 'TEMPLATE_NOT_UPSTREAM', message: `tasks.${task}.outputs cannot be used in defaults; use it in the task that depends on ${task}` }
  }
  if (!scope.isUpstream(task)) {
    const self = task === scope.taskId
    return {
      code: 'TEMPLATE_NOT_UPSTREAM',
      message: self
        ? `task "${task}" cannot read its own outputs`
        : `task "${scope.taskId ?? '?'}" reads tasks.${task}.outputs but does not depend on "${task}" (directly or through its upstreams); add it to depends_on`,
    }
  }
  return undefined
}
