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
  // Errors inside a oneOf branch are noise once the oneOf itself is reported.
  const oneOfPaths = errors.filter((e) => e.keyword === 'oneOf').map((e) => e.schemaPath)
  for (const error of errors) {
    if (error.keyword === 'if') continue
    // Inside propertyNames Ajv reports the failing keyword too; the propertyNames error says it better.
    if (error.propertyName !== undefined && error.keyword !== 'propertyNames') continue
    if (oneOfPaths.some((p) => error.schemaPath.startsWith(`${p}/`))) continue
    const path = [...prefix, ...pointerToPath(error.instancePath, root, prefix)]
    const problem = describe(error, path, locate)
    if (problem) push(problem)
  }
  return problems
}

function describe(error: ErrorObject, path: PathSegment[], locate: Locate): SchemaProblem | undefined {
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
      const named = definitionName(error.schemaPath)
      const special = named ? PATTERN_CODES[named] : undefined
      if (special) return { code: special.code, message: `${where}: ${JSON.stringify(error.data)} ${special.text}`, path, position: locate(path) }
      return { code: 'INVALID_VALUE', message: `${where}: ${JSON.stringify(error.data)} must match ${String(params.pattern)}`, path, position: locate(path) }
    }
    case 'propertyNames': {
      const name = String(params.propertyName)
      const named = definitionName(String((error.schema as { $ref?: string })?.$ref ?? ''))
      const special = named ? PATTERN_CODES[named] : undefined
      return {
        code: special?.code ?? 'INVALID_ID',
        message: `${where}: key "${name}" ${special?.text ?? 'is not an allowed name'}`,
        path: [...path, name],
        position: locate([...path, name], 'key'),
      }
    }
    case 'oneOf':
    case 'anyOf':
      return oneOfProblem(error, path, where, locate)
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

function oneOfProblem(error: ErrorObject, path: PathSegment[], where: string, locate: Locate): SchemaProblem {
  const branches = (Array.isArray(error.schema) ? error.schema : []) as { required?: string[] }[]
  const keys = branches.flatMap((b) => b.required ?? [])
  const passing = (error.params as { passingSchemas?: unknown }).passingSchemas
  if (keys.length === branches.length && keys.length > 0) {
    const list = keys.map((k) => `"${k}"`).join(' or ')
    const message = Array.isArray(passing) ? `${where} must set only one of ${list}` : `${where} must set one of ${list}`
    return { code: 'INVALID_PARAMS', message, path, position: locate(path, 'key') }
  }
  return { code: 'INVALID_VALUE', message: `${where} does not match any allowed form`, path, position: locate(path) }
}

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
