/**
 * Run parameters (`params:` at the top of a DAG): each definition is a small JSON Schema. The same
 * compiled schema checks the defaults at validation time and the values given at trigger time.
 */
import type { ValidateFunction } from 'ajv/dist/2020.js'
import { createRequire } from 'node:module'
import { createAjv } from './schemas.ts'

/** The linear-time regexp engine (re2js) is loaded with Ajv, when a definition is first compiled. */
const requireHere = createRequire(import.meta.url)
let linear: typeof import('./linear-regexp.ts') | undefined

export type ParamDefinitions = Record<string, Record<string, unknown>>

/** Why a definition cannot be compiled: a broken definition, or a pattern the linear-time engine cannot run. */
export interface ParamDefinitionProblem {
  code: 'INVALID_PARAM_DEFINITION' | 'UNSUPPORTED_PATTERN'
  message: string
}

let ajv: ReturnType<typeof createAjv> | undefined
const cache = new Map<string, ValidateFunction | ParamDefinitionProblem>()

/** A validator for one parameter definition, or the reason the definition itself is broken. */
export function compileParam(definition: Record<string, unknown>): ValidateFunction | ParamDefinitionProblem {
  const { default: _default, ...schema } = definition
  const key = JSON.stringify(schema)
  const hit = cache.get(key)
  if (hit !== undefined) return hit
  // Patterns come from DAG authors and are tested against values from whoever triggers a run.
  linear ??= requireHere('./linear-regexp.ts') as typeof import('./linear-regexp.ts')
  ajv ??= createAjv({ regExp: linear.linearRegExp })
  let result: ValidateFunction | ParamDefinitionProblem
  try {
    result = ajv.compile({ ...schema })
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0]! : String(error)
    result = { code: error instanceof linear.UnsupportedPatternError ? 'UNSUPPORTED_PATTERN' : 'INVALID_PARAM_DEFINITION', message }
  }
  if (cache.size > 5000) cache.clear()
  cache.set(key, result)
  return result
}

/**
 * Arrays and objects may nest this deep in a parameter value (the value itself is level 1). Deeper
 * values cost recursion everywhere they go (validation, Postgres jsonb, templates) and serve no
 * workflow; 2,500 levels made the API fail with a 500 and 20,000 overflowed the CLI's stack.
 */
export const MAX_PARAM_DEPTH = 32

/** Whether arrays and objects in `value` nest deeper than `max`; iterative, so any depth is safe to ask about. */
function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }]
  while (stack.length > 0) {
    const next = stack.pop()!
    if (next.value === null || typeof next.value !== 'object') continue
    const depth = next.depth + 1
    if (depth > max) return true
    for (const item of Array.isArray(next.value) ? next.value : Object.values(next.value)) stack.push({ value: item, depth })
  }
  return false
}

/** The same bound on JSON text, before it is parsed: brackets outside strings. */
export function jsonNestsDeeperThan(text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    if (inString) {
      if (ch === 0x5c /* \ */) i++
      else if (ch === 0x22 /* " */) inString = false
    } else if (ch === 0x22) inString = true
    else if (ch === 0x5b || ch === 0x7b) {
      if (++depth > max) return true
    } else if ((ch === 0x5d || ch === 0x7d) && depth > 0) depth--
  }
  return false
}

export function tooDeepMessage(name: string): string {
  return `parameter "${name}" nests arrays or objects deeper than ${MAX_PARAM_DEPTH} levels, the limit for a parameter value`
}

const SIMPLE_TYPES: ReadonlySet<unknown> = new Set(['string', 'number', 'integer', 'boolean'])
const NUMBER_BOUNDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'] as const
const STRING_LENGTHS = ['minLength', 'maxLength'] as const

/**
 * True when the definition is a simple one (a scalar type with bounds, lengths or an enum of scalars)
 * that Ajv compiles as it is, and its default, if any, satisfies it. This is what nearly every DAG
 * declares, and checking it directly spares the validator Ajv and its schema compilation. False
 * means "not known": compileParam decides, and gives the exact message. Patterns are always left to
 * compileParam, whose regular expression engine is the one that counts.
 */
export function isPlainlyValid(definition: Record<string, unknown>): boolean {
  const { type } = definition
  if (!SIMPLE_TYPES.has(type)) return false
  const numeric = type === 'number' || type === 'integer'
  for (const key in definition) {
    const value = definition[key]
    switch (key) {
      case 'type':
      case 'default':
        break
      case 'description':
      case 'title':
        if (typeof value !== 'string') return false
        break
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        if (!numeric || typeof value !== 'number' || !Number.isFinite(value)) return false
        break
      case 'minLength':
      case 'maxLength':
        if (type !== 'string' || !Number.isSafeInteger(value) || (value as number) < 0) return false
        break
      case 'enum':
        if (!Array.isArray(value) || value.length === 0 || new Set(value).size !== value.length) return false
        if (!value.every((item) => item === null || typeof item === 'string' || typeof item === 'boolean' || (typeof item === 'number' && Number.isFinite(item)))) return false
        break
      default:
        return false
    }
  }
  if (!Object.hasOwn(definition, 'default')) return true
  const value = definition.default
  switch (type) {
    case 'string':
      if (typeof value !== 'string') return false
      for (const key of STRING_LENGTHS) {
        const limit = definition[key] as number | undefined
        if (limit === undefined) continue
        // Ajv counts code points, not UTF-16 units.
        let length = 0
        for (const _ of value) length++
        if (key === 'minLength' ? length < limit : length > limit) return false
      }
      break
    case 'boolean':
      if (typeof value !== 'boolean') return false
      break
    default: {
      if (typeof value !== 'number' || !Number.isFinite(value) || (type === 'integer' && !Number.isInteger(value))) return false
      for (const key of NUMBER_BOUNDS) {
        const bound = definition[key] as number | undefined
        if (bound === undefined) continue
        const ok = key === 'minimum' ? value >= bound : key === 'maximum' ? value <= bound : key === 'exclusiveMinimum' ? value > bound : value < bound
        if (!ok) return false
      }
    }
  }
  if (Array.isArray(definition.enum) && !definition.enum.some((item) => item === value)) return false
  return true
}

export type ResolvedParams = { ok: true; values: Record<string, unknown> } | { ok: false; errors: string[] }

/**
 * Values for a run: given values checked against their definitions, defaults filled in, unknown
 * names and missing required values refused.
 */
export function resolveRunParams(definitions: ParamDefinitions, given: Record<string, unknown>): ResolvedParams {
  const errors: string[] = []
  const values: Record<string, unknown> = Object.create(null) as Record<string, unknown>
  for (const name of Object.keys(given)) {
    if (!Object.hasOwn(definitions, name)) errors.push(`unknown parameter "${name}"; declared: ${Object.keys(definitions).join(', ') || 'none'}`)
  }
  for (const [name, definition] of Object.entries(definitions)) {
    const present = Object.hasOwn(given, name)
    if (!present && !Object.hasOwn(definition, 'default')) {
      errors.push(`parameter "${name}" is required`)
      continue
    }
    const value = present ? coerce(given[name], definition.type) : definition.default
    const structuredText = typeof value === 'string' && (definition.type === 'array' || definition.type === 'object')
    if (nestsDeeperThan(value, MAX_PARAM_DEPTH) || (structuredText && jsonNestsDeeperThan(value, MAX_PARAM_DEPTH))) {
      errors.push(tooDeepMessage(name))
      continue
    }
    const validate = compileParam(definition)
    if (typeof validate !== 'function') errors.push(`parameter "${name}" has an invalid definition: ${validate.message}`)
    else if (!validate(value)) errors.push(`parameter "${name}": ${(validate.errors ?? []).map((e) => `${e.instancePath || 'value'} ${e.message}`).join('; ')}`)
    else if (!storable(value)) errors.push(`parameter "${name}" contains a NUL character or an unpaired UTF-16 surrogate, which cannot be stored`)
    else values[name] = value
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, values }
}

const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** Postgres jsonb holds neither NUL nor unpaired surrogates; refuse them here rather than fail on INSERT. */
function storable(value: unknown): boolean {
  if (typeof value === 'string') return !UNSTORABLE.test(value)
  if (Array.isArray(value)) return value.every(storable)
  if (value !== null && typeof value === 'object') return Object.entries(value).every(([key, item]) => !UNSTORABLE.test(key) && storable(item))
  return true
}

/** `--param k=v` gives strings; read them as the declared type where that is unambiguous. */
function coerce(value: unknown, type: unknown): unknown {
  if (typeof value !== 'string') return value
  if ((type === 'number' || type === 'integer') && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value)
  if (type === 'boolean' && (value === 'true' || value === 'false')) return value === 'true'
  if ((type === 'array' || type === 'object') && /^[[{]/.test(value.trim()) && !jsonNestsDeeperThan(value, MAX_PARAM_DEPTH)) {
    try {
      return JSON.parse(value) as unknown
    } catch {
      return value
    }
  }
  return value
}
