/**
 * Turns Ajv's errors into cairn diagnostics: one per real problem, placed on the offending YAML
 * node, phrased for a person editing a file, with a code from the registry.
 */
import type { ErrorObject } from 'ajv'
import type { ErrorCode } from '../errors.ts'
import type { Json, PathSegment, Position } from './yaml-load.ts'
import { formatPath } from './diagnostics.ts'
import { closest } from './suggest.ts'

export interface SchemaProblem {
  code: ErrorCode
  message: string
  path: PathSegment[]
  position: Position
}

type Locate = (path: readonly PathSegment[], part?: 'key' | 'value') => Position

/** Pattern failures of these named definitions get their own codes and words. */
const PATTERN_CODES: Record<string, { code: ErrorCode; text: string }> = {
  duration: { code: 'INVALID_DURATION', text: 'is not a duration such as 500ms, 30s, 5m, 2h, 1d or 1h30m' },
  taskId: { code: 'INVALID_ID', text: 'is not a valid task id (^[a-z][a-z0-9_]{0,63}$: lowercase letters, digits and _, starting with a letter)' },
  dagId: { code: 'INVALID_ID', text: 'is not a valid DAG id (^[a-z][a-z0-9_-]{0,63}$)' },
  dateString: { code: 'INVALID_DATE', text: 'is not a date (2026-01-01) or ISO-8601 datetime (2026-01-01T06:00:00)' },
  paramName: { code: 'INVALID_ID', text: 'is not a valid parameter name' },
  featureViewId: { code: 'INVALID_ID', text: 'is not a valid feature view id (^[a-z][a-z0-9_]{0,63}$)' },
}

export function schemaProblems(errors: readonly ErrorObject[], root: Json, locate: Locate, prefix: readonly PathSegment[] = []): SchemaProblem[] {
  const problems: SchemaProblem[] = []
  const seen = new Set<string>()
  const push = (problem: SchemaProblem): void => {
    const key = `${problem.code}|${formatPath(problem.path)}|${problem.message}`
    if (seen.has(key)) return
    seen.add(key)
    problems.push(problem)
  }
  const plan = planCombinators(errors)
  const namesInside = innerPropertyNameErrors(errors)
  for (const error of errors) {
    if (error.keyword === 'if') continue
    // Inside propertyNames Ajv reports the failing keyword too; the propertyNames error says it better.
    if (error.propertyName !== undefined && error.keyword !== 'propertyNames') continue
    if (plan.hidden.has(error)) continue
    // A discriminator whose tag value already failed the tag's own enum would say the same thing twice.
    if (error.keyword === 'discriminator' && errors.some((e) => e.instancePath === `${error.instancePath}/${String((error.params as { tag?: unknown }).tag)}`)) continue
    const path = [...prefix, ...pointerToPath(error.instancePath, root, prefix)]
    const problem = describe(error, path, locate, plan.branches.get(error) ?? [], namesInside.get(`${error.instancePath}\u0000${String(error.params.propertyName)}`) ?? [])
    if (problem) push(problem)
  }
  return problems
}

/**
 * Ajv evaluates oneOf/anyOf before the other keywords of the same schema and, when it fails, leaves
 * the errors of every branch right before it. Reporting all of them ("must be integer", "must match
 * ...", "must match a schema in anyOf") buries the one that matters. When the value has the type of
 * exactly one branch, that branch's errors are reported and the rest hidden; otherwise one summary.
 */
function planCombinators(errors: readonly ErrorObject[]): { hidden: Set<ErrorObject>; branches: Map<ErrorObject, ErrorObject[]> } {
  const hidden = new Set<ErrorObject>()
  const branches = new Map<ErrorObject, ErrorObject[]>()
  errors.forEach((error, i) => {
    if (error.keyword !== 'oneOf' && error.keyword !== 'anyOf') return
    const inner: ErrorObject[] = []
    for (let j = i - 1; j >= 0 && isWithin(errors[j]!.instancePath, error.instancePath); j--) inner.unshift(errors[j]!)
    branches.set(error, inner)
    const count = Array.isArray(error.schema) ? error.schema.length : 0
    const typeMisses = inner.filter((e) => e.keyword === 'type' && e.instancePath === error.instancePath)
    const fitting = inner.filter((e) => !typeMisses.includes(e))
    if (count > 1 && typeMisses.length === count - 1 && fitting.length > 0 && !requiredOnly(error)) {
      // The value fits one branch by type: its own errors say what is wrong; the combinator adds nothing.
      for (const e of typeMisses) hidden.add(e)
      hidden.add(error)
    } else {
      for (const e of inner) hidden.add(e)
    }
  })
  return { hidden, branches }
}

function isWithin(pointer: string, parent: string): boolean {
  return pointer === parent || pointer.startsWith(`${parent}/`)
}

/** Branches that differ only by which key they require (`command` or `script`). */
function requiredOnly(error: ErrorObject): boolean {
  const list = (Array.isArray(error.schema) ? error.schema : []) as { required?: string[] }[]
  return list.length > 0 && list.every((b) => Array.isArray(b.required) && b.required.length > 0)
}

/** The failing keyword inside each propertyNames check (enum or pattern), keyed by object and name. */
function innerPropertyNameErrors(errors: readonly ErrorObject[]): Map<string, ErrorObject[]> {
  const out = new Map<string, ErrorObject[]>()
  for (const error of errors) {
    if (error.propertyName === undefined || error.keyword === 'propertyNames') continue
    const key = `${error.instancePath}\u0000${error.propertyName}`
    out.set(key, [...(out.get(key) ?? []), error])
  }
  return out
}

function describe(error: ErrorObject, path: PathSegment[], locate: Locate, inner: readonly ErrorObject[], nameErrors: readonly ErrorObject[]): SchemaProblem | undefined {
  const where = formatPath(path) || 'document'
  const params = error.params as Record<string, unknown>
  switch (error.keyword) {
    case 'additionalProperties':
    case 'unevaluatedProperties': {
      const key = String(params.additionalProperty ?? params.unevaluatedProperty)
      const allowed = Object.keys(((error.parentSchema as { properties?: object })?.properties ?? {}) as object)
      const hint = closest(key, allowed)
      const list = allowed.length > 0 ? `; allowed: ${allowed.join(', ')}` : ''
      return {
        code: 'UNKNOWN_KEY',
        message: `unknown key "${key}" in ${where}${hint ? ` (did you mean "${hint}"?)` : list}`,
        path: [...path, key],
        position: locate([...path, key], 'key'),
      }
    }
    case 'required': {
      const key = String(params.missingProperty)
      return { code: 'MISSING_KEY', message: `${where} is missing required key "${key}"`, path, position: locate(path, 'key') }
    }
    case 'type':
      return { code: 'INVALID_TYPE', message: `${where} must be ${typeWords(params.type)}`, path, position: locate(path) }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]) ?? []
      const hint = typeof error.data === 'string' ? closest(error.data, allowed.map(String)) : undefined
      return {
        code: 'INVALID_VALUE',
        message: `${where} must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}${hint ? ` (did you mean "${hint}"?)` : ''}`,
        path,
        position: locate(path),
      }
    }
    case 'const':
      return { code: 'INVALID_VALUE', message: `${where} must be ${JSON.stringify(params.allowedValue)}`, path, position: locate(path) }
    case 'pattern': {
      const named = definitionName(error.schemaPath) ?? INLINE_PATTERN_NAMES[error.schemaPath]
      const special = named ? PATTERN_CODES[named] : undefined
      if (special) return { code: special.code, message: `${where}: ${JSON.stringify(error.data)} ${special.text}`, path, position: locate(path) }
      return { code: 'INVALID_VALUE', message: `${where}: ${JSON.stringify(error.data)} must match ${String(params.pattern)}`, path, position: locate(path) }
    }
    case 'propertyNames': {
      const name = String(params.propertyName)
      const named = definitionName(String((error.schema as { $ref?: string })?.$ref ?? ''))
      const special = named ? PATTERN_CODES[named] : undefined
      // Keys drawn from a closed list (metric names) are unknown keys, with a hint, not bad ids.
      const allowed = nameErrors.find((e) => e.keyword === 'enum')?.params.allowedValues as unknown[] | undefined
      if (allowed) {
        const hint = closest(name, allowed.map(String))
        return {
          code: 'UNKNOWN_KEY',
          message: `unknown key "${name}" in ${where}${hint ? ` (did you mean "${hint}"?)` : `; allowed: ${allowed.map(String).join(', ')}`}`,
          path: [...path, name],
          position: locate([...path, name], 'key'),
        }
      }
      const pattern = nameErrors.find((e) => e.keyword === 'pattern')?.params.pattern
      return {
        code: special?.code ?? 'INVALID_ID',
        message: `${where}: key "${name}" ${special?.text ?? `is not an allowed name${pattern ? ` (${String(pattern)})` : ''}`}`,
        path: [...path, name],
        position: locate([...path, name], 'key'),
      }
    }
    case 'dependentRequired': {
      const key = String(params.missingProperty)
      return { code: 'MISSING_KEY', message: `${where} is missing required key "${key}" (needed with "${String(params.property)}")`, path, position: locate(path, 'key') }
    }
    case 'oneOf':
    case 'anyOf':
      return oneOfProblem(error, path, where, locate, inner)
    case 'discriminator': {
      const tag = String(params.tag)
      const branches = ((error.parentSchema as { oneOf?: { properties?: Record<string, { const?: unknown; enum?: unknown[] }> }[] })?.oneOf ?? [])
        .flatMap((b) => b.properties?.[tag]?.const ?? b.properties?.[tag]?.enum ?? [])
        .map(String)
      const value = (error.data as Record<string, unknown> | null)?.[tag]
      if (value === undefined) return { code: 'MISSING_KEY', message: `${where} is missing required key "${tag}" (one of ${branches.join(', ')})`, path, position: locate(path, 'key') }
      const hint = typeof value === 'string' ? closest(value, branches) : undefined
      return {
        code: 'INVALID_VALUE',
        message: `${where}.${tag} must be one of ${branches.join(', ')}${hint ? ` (did you mean "${hint}"?)` : ''}`,
        path: [...path, tag],
        position: locate([...path, tag]),
      }
    }
    case 'false schema':
      return { code: 'UNKNOWN_KEY', message: `${where} is not allowed here`, path, position: locate(path, 'key') }
    case 'minProperties':
      return { code: 'INVALID_VALUE', message: `${where} must have at least ${String(params.limit)} entr${params.limit === 1 ? 'y' : 'ies'}`, path, position: locate(path) }
    case 'format':
      return { code: 'INVALID_VALUE', message: `${where} must be a valid ${String(params.format)}`, path, position: locate(path) }
    default:
      return { code: 'INVALID_VALUE', message: `${where} ${error.message ?? 'is not valid'}`, path, position: locate(path) }
  }
}

function oneOfProblem(error: ErrorObject, path: PathSegment[], where: string, locate: Locate, inner: readonly ErrorObject[]): SchemaProblem | undefined {
  const branches = (Array.isArray(error.schema) ? error.schema : []) as { required?: string[] }[]
  const keys = branches.flatMap((b) => b.required ?? [])
  const passing = (error.params as { passingSchemas?: unknown }).passingSchemas
  if (keys.length === branches.length && keys.length > 0) {
    // `required` passes on anything that is not a mapping; the type error already says what is wrong.
    if (error.data === null || typeof error.data !== 'object' || Array.isArray(error.data)) return undefined
    const list = keys.map((k) => `"${k}"`).join(' or ')
    const message = Array.isArray(passing) ? `${where} must set only one of ${list}` : `${where} must set one of ${list}`
    return { code: 'INVALID_PARAMS', message, path, position: locate(path, 'key') }
  }
  const typeMisses = inner.filter((e) => e.keyword === 'type' && e.instancePath === error.instancePath)
  if (typeMisses.length > 0 && typeMisses.length === branches.length) {
    return { code: 'INVALID_TYPE', message: `${where} must be ${typeWords(typeMisses.flatMap((e) => e.params.type as unknown))}`, path, position: locate(path) }
  }
  const reasons = [...new Set(inner.map((e) => `${e.instancePath.slice(error.instancePath.length).replace(/^\//, '').replace(/\//g, '.')} ${e.message ?? ''}`.trim()))]
  return { code: 'INVALID_VALUE', message: `${where} does not match any allowed form${reasons.length > 0 ? ` (${reasons.join('; or ')})` : ''}`, path, position: locate(path) }
}

/** Id patterns written inline rather than as a named definition. */
const INLINE_PATTERN_NAMES: Record<string, string> = { '#/properties/feature_view/pattern': 'featureViewId' }

/** `#/$defs/duration/pattern` -> `duration`. */
function definitionName(schemaPath: string): string | undefined {
  const match = /\$defs\/([^/]+)(?:\/[^/]*)?$/.exec(schemaPath)
  return match?.[1]
}

function typeWords(type: unknown): string {
  const list = Array.isArray(type) ? type : [type]
  const words = list.map((t) => (t === 'object' ? 'a mapping' : t === 'array' ? 'a list' : t === 'integer' ? 'an integer' : `a ${String(t)}`))
  return words.join(' or ')
}

/** JSON pointer -> path segments, with numbers where the value at that point is a list. */
function pointerToPath(pointer: string, root: Json, prefix: readonly PathSegment[]): PathSegment[] {
  if (pointer === '') return []
  let current: Json | undefined = root
  for (const segment of prefix) current = step(current, segment)
  const out: PathSegment[] = []
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    const segment: PathSegment = Array.isArray(current) ? Number(key) : key
    out.push(segment)
    current = step(current, segment)
  }
  return out
}

function step(value: Json | undefined, segment: PathSegment): Json | undefined {
  if (value === null || typeof value !== 'object') return undefined
  if (Array.isArray(value)) return typeof segment === 'number' ? value[segment] : undefined
  return Object.hasOwn(value, segment) ? value[segment] : undefined
}
