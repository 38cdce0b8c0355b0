/**
 * Parsing of a DAG's `schedule`: a 5-field cron expression or one of the presets of SPEC section 1.
 * cron-parser also accepts 6-field (seconds) and 3-field forms; cairn does not, so the field count is
 * checked here first.
 */
import { CronExpressionParser } from 'cron-parser'

export const SCHEDULE_PRESETS = {
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
    validated.get(text) ?? CronExpressionParser.parse(text, { tz: 'UTC' })
    if (validated.size < 10_000) validated.set(text, true)
  } catch (error) {
    return { ok: false, message: `"${text}" is not a valid cron expression: ${error instanceof Error ? error.message : String(error)}` }
  }
  return { ok: true, schedule: { kind: 'cron', cron: text } }
}
