/** Dates and time zones as written in DAG files. */
import { DateTime, IANAZone } from 'luxon'

const zones = new Map<string, boolean>()

export function isValidTimezone(name: string): boolean {
  let valid = zones.get(name)
  if (valid === undefined) {
    valid = IANAZone.isValidZone(name)
    if (zones.size < 1000) zones.set(name, valid)
  }
  return valid
}

/**
 * Reads `start_date` / `end_date`: a date (`2026-01-01`, midnight) or an ISO datetime, in the DAG's
 * time zone unless the text carries its own offset. Returns undefined for impossible dates (2026-02-30).
 */
export function parseDagDate(text: string, timezone: string): Date | undefined {
  const parsed = DateTime.fromISO(text.replace(' ', 'T'), { zone: isValidTimezone(timezone) ? timezone : 'UTC', setZone: true })
  return parsed.isValid ? parsed.toJSDate() : undefined
}
