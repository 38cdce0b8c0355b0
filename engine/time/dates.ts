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
  // The same few dates and zones recur in every DAG file of a deployment; luxon's parse is not cheap.
  const key = `${timezone}\u0000${text}`
  let time = parsedDates.get(key)
  if (time === undefined) {
    const parsed = DateTime.fromISO(text.replace(' ', 'T'), { zone: isValidTimezone(timezone) ? timezone : 'UTC', setZone: true })
    time = parsed.isValid ? parsed.toMillis() : null
    // A text without a full date (a bare time) means today, so only dated texts are remembered.
    if (!FULL_DATE.test(text)) return time === null ? undefined : new Date(time)
    if (parsedDates.size >= 10_000) parsedDates.clear()
    parsedDates.set(key, time)
  }
  return time === null ? undefined : new Date(time)
}

const parsedDates = new Map<string, number | null>()
const FULL_DATE = /^\d{4}-\d{2}-\d{2}/
