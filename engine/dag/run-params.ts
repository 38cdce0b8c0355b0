/**
 * Run parameters (`params:` at the top of a DAG): each definition is a small JSON Schema. The same
 * compiled schema checks the defaults at validation time and the values given at trigger time.
 */
import type { ValidateFunction } from 'ajv/dist/2020.js'
import { createAjv } from './schemas.ts'
import { linearRegExp, UnsupportedPatternError } from './linear-regexp.ts'

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
  ajv ??= createAjv({ regExp: linearRegExp })
  let result: ValidateFunction | ParamDefinitionProblem
  try {
    result = ajv.compile({ ...schema })
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0]! : String(error)
    result = { code: error instanceof UnsupportedPatternError ? 'UNSUPPORTED_PATTERN' : 'INVALID_PARAM_DEFINITION', message }
  }
  if (cache.size > 5000) cache.clear()
  cache.set(key, result)
  return result
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
  if ((type === 'array' || type === 'object') && /^[[{]/.test(value.trim())) {
    try {
      return JSON.parse(value) as unknown
    } catch {
      return value
    }
  }
  return value
}
