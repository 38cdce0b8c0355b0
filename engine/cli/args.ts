/** Command-line pieces shared by the commands that talk to the database. Every problem here is a UsageError (exit 2). */
import { UsageError } from './io.ts'
import { MAX_PARAM_DEPTH, jsonNestsDeeperThan, tooDeepMessage } from '../dag/run-params.ts'

/** Exactly the named positionals (`optional` ones may be missing), or a usage error naming what is wrong. */
export function takePositionals(positionals: readonly string[], required: readonly string[], optional: readonly string[] = []): string[] {
  if (positionals.length < required.length) throw new UsageError(`missing ${required.slice(positionals.length).join(' and ')}`)
  if (positionals.length > required.length + optional.length) throw new UsageError(`unexpected argument "${positionals[required.length + optional.length]}"`)
  return [...positionals]
}

/** `--param k=v`, repeatable. Values stay strings; the DAG's definitions coerce them (resolveRunParams). */
export function parseParamArgs(values: readonly string[] | undefined): Record<string, string> {
  const params: Record<string, string> = Object.create(null) as Record<string, string>
  for (const text of values ?? []) {
    const eq = text.indexOf('=')
    if (eq <= 0) throw new UsageError(`--param takes NAME=VALUE, not "${text}"`)
    const name = text.slice(0, eq)
    if (Object.hasOwn(params, name)) throw new UsageError(`--param ${name} is given twice`)
    const value = text.slice(eq + 1)
    // Checked on the text: parsing a value nested 20,000 deep is what overflows the stack.
    if (/^\s*[[{]/.test(value) && jsonNestsDeeperThan(value, MAX_PARAM_DEPTH)) throw new UsageError(`--param ${tooDeepMessage(name).replace(/^parameter /, '')}`)
    params[name] = value
  }
  return params
}

export function parsePositiveInt(option: string, text: string | undefined, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1 || n > max) throw new UsageError(`${option} must be a whole number from 1 to ${max}, not "${text}"`)
  return n
}

export function parseChoice<T extends string>(option: string, text: string | undefined, choices: readonly T[]): T | undefined {
  if (text === undefined) return undefined
  if (!(choices as readonly string[]).includes(text)) throw new UsageError(`${option} must be one of ${choices.join(', ')}, not "${text}"`)
  return text as T
}
