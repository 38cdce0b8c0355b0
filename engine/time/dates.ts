/** Dates and time zones as written in DAG files. */
import { createRequire } from 'node:module'
import type * as Luxon from 'luxon'

const requireHere = createRequire(import.meta.url)
let luxonModule: typeof Luxon | undefined
/** luxon is loaded for zone aliases and for dates with a zone: `cairn validate` rarely needs it. */
const luxon = (): typeof Luxon => (luxonModule ??= requireHere('luxon') as typeof Luxon)

const zones = new Map<string, boolean>()

/** The canonical IANA names this runtime knows; reading them is cheaper than luxon's first zone check. */
let canonical: ReadonlySet<string> | undefined

export function isValidTimezone(name: string): boolean {
  let valid = zones.get(name)
  if (valid === undefined) {
    canonical ??= new Set(Intl.supportedValuesOf('timeZone'))
    // Aliases (US/Eastern, lower case, Etc/GMT+5) are not in the list: luxon decides those.
    valid = name === 'UTC' || canonical.has(name) || luxon().IANAZone.isValidZone(name)
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
    const parsed = luxon().DateTime.fromISO(text.replace(' ', 'T'), { zone: isValidTimezone(timezone) ? timezone : 'UTC', setZone: true })
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

const CALENDAR_DATE = /^(\d{4})-(\d{2})-(\d{2})$/

/**
 * Whether `YYYY-MM-DD` names a day that exists (2026-02-30 does not), without a time zone: a date's
 * existence does not depend on one, and the validator need not load luxon to know it. Undefined for
 * any other text (parseDagDate decides those).
 */
export function isRealCalendarDate(text: string): boolean | undefined {
  const match = CALENDAR_DATE.exec(text)
  if (!match) return undefined
  const year = Number(match[1])
  const month = Number(match[2])
  const day = Number(match[3])
  if (year < 1000) return undefined
  if (month < 1 || month > 12 || day < 1) return false
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!
  return day <= days
}
