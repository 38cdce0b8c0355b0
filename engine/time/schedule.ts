/**
 * Parsing of a DAG's `schedule`: a 5-field cron expression or one of the presets of SPEC section 1.
 * cron-parser also accepts 6-field (seconds) and 3-field forms; cairn does not, so the field count is
 * checked here first.
 */
import { createRequire } from 'node:module'
import type { CronExpressionParser as CronParser } from 'cron-parser'

const requireHere = createRequire(import.meta.url)
let cronParser: typeof CronParser | undefined
/** cron-parser (and luxon's zone machinery under it) is loaded only for expressions plainlyValid cannot vouch for. */
const parser = (): typeof CronParser => (cronParser ??= (requireHere('cron-parser') as { CronExpressionParser: typeof CronParser }).CronExpressionParser)

/** Minute, hour, day of month, month, day of week: the values each field may name. */
const FIELD_RANGES: readonly (readonly [number, number])[] = [
  [0, 59],
  [0, 23],
  [1, 31],
  [1, 12],
  [0, 6],
]
const NUMBER = /^(?:0|[1-9]\d?)$/

/**
 * True for the expressions nearly every DAG uses, made of numbers in range, `*`, lists, ranges and
 * steps, which cron-parser accepts as they are. False means "ask cron-parser", which also knows
 * names (MON, JAN), L, W, # and the day-of-month limits of each month.
 */
export function plainlyValidCron(fields: readonly string[]): boolean {
  if (fields.length !== 5) return false
  // A day of month in a restricted month may not exist (30 2): cron-parser decides that.
  if (fields[2] !== '*' && fields[3] !== '*') return false
  for (let f = 0; f < 5; f++) {
    const [low, high] = FIELD_RANGES[f]!
    const inRange = (text: string): boolean => NUMBER.test(text) && Number(text) >= low && Number(text) <= high
    const parts = fields[f]!.split(',')
    // A list: distinct plain numbers only (cron-parser refuses values that repeat, also through * or ranges).
    if (parts.length > 1 && (!parts.every(inRange) || new Set(parts.map(Number)).size !== parts.length)) return false
    for (const part of parts) {
      const slash = part.indexOf('/')
      const base = slash < 0 ? part : part.slice(0, slash)
      if (slash >= 0) {
        const step = part.slice(slash + 1)
        if (!NUMBER.test(step) || Number(step) < 1 || Number(step) > high) return false
      }
      if (base === '*') continue
      const dash = base.indexOf('-')
      if (dash < 0) {
        if (!inRange(base) || slash >= 0) return false
      } else if (!inRange(base.slice(0, dash)) || !inRange(base.slice(dash + 1)) || Number(base.slice(0, dash)) > Number(base.slice(dash + 1))) return false
    }
  }
  return true
}

const SCHEDULE_PRESETS = {
  '@hourly': '0 * * * *',
  '@daily': '0 0 * * *',
  '@weekly': '0 0 * * 0',
  '@monthly': '0 0 1 * *',
  '@yearly': '0 0 1 1 *',
} as const

export type Schedule = { kind: 'cron'; cron: string } | { kind: 'once' }

export type ScheduleResult = { ok: true; schedule: Schedule } | { ok: false; message: string }

const validated = new Map<string, true>()

/** `timezone` is accepted for symmetry with the scheduler; a schedule's validity does not depend on it. */
export function parseSchedule(expression: string, _timezone = 'UTC'): ScheduleResult {
  const text = expression.trim()
  if (text === '@once') return { ok: true, schedule: { kind: 'once' } }
  if (text.startsWith('@')) {
    const cron = (SCHEDULE_PRESETS as Record<string, string>)[text]
    if (cron === undefined) {
      return { ok: false, message: `unknown preset "${text}"; use one of ${[...Object.keys(SCHEDULE_PRESETS), '@once'].join(', ')}` }
    }
    return { ok: true, schedule: { kind: 'cron', cron } }
  }
  const fields = text.split(/\s+/)
  if (fields.length !== 5) {
    return { ok: false, message: `"${text}" has ${fields.length} fields; a cron expression has 5 (minute hour day-of-month month day-of-week)` }
  }
  try {
    // Validity does not depend on the zone; parsing in UTC avoids time-zone work per file.
    validated.get(text) ?? (plainlyValidCron(fields) || parser().parse(text, { tz: 'UTC' }))
    if (validated.size < 10_000) validated.set(text, true)
  } catch (error) {
    return { ok: false, message: `"${text}" is not a valid cron expression: ${error instanceof Error ? error.message : String(error)}` }
  }
  return { ok: true, schedule: { kind: 'cron', cron: text } }
}
