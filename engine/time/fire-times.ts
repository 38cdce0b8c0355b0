/**
 * When a cron expression fires in a time zone with daylight-saving time.
 *
 * Policy: the five cron fields are matched against the DAG's wall clock, and each matching wall-clock
 * time fires at the first instant at which that wall clock reads that time or later. So:
 *  - A time skipped by a spring-forward gap fires once, at the end of the gap: `30 2 * * *` in
 *    Europe/Berlin on 2026-03-29 fires at 03:00 CEST; `15 2 * * *` in Australia/Lord_Howe (30-minute
 *    shift) fires at 02:30 on the day its clock jumps from 02:00 to 02:30. Several skipped times collapse
 *    into that one fire (`*\/15 * * * *` does not fire four times at 03:00).
 *  - A time that occurs twice when the clock falls back fires once, at its first occurrence: `30 2 * * *`
 *    in Berlin on 2026-10-25 fires at 02:30 CEST, not again at 02:30 CET. This holds for every expression,
 *    so `0 * * * *` has one two-hour interval that night (02:00 CEST to 03:00 CET): every wall-clock hour
 *    belongs to exactly one data interval and no `ds` is produced twice by a daily schedule. (Airflow
 *    differs here: it fires non-fixed-hour schedules such as hourly in both passes of the repeated hour.)
 * Put another way, this is a cron daemon that wakes every minute, fires once if a matching wall-clock
 * minute has been reached since it last woke, and never fires for a wall-clock minute it has already
 * passed. Fire times are strictly increasing and never repeat.
 *
 * Why not cron-parser's own `tz` option: in cron-parser 5.10 it moves Berlin's skipped 02:30 to 03:30
 * but drops Lord Howe's skipped 02:15 (no run that day), fires `0 * * * *` in both passes of Berlin's
 * repeated hour but `0 2 * * *` in one, and throws "loop limit exceeded" for `0 * * * *` at Lord Howe's
 * fall-back. So cron-parser only matches fields here, in UTC (which has no DST), against wall-clock times
 * written as if they were UTC instants ("wall ms"); this module maps those to real instants.
 *
 * Assumes a zone changes its offset at most once within two days, as every zone in current use does.
 */
import { CronExpressionParser, type CronExpression } from 'cron-parser'
import { IANAZone } from 'luxon'

const MINUTE = 60_000
const DAY = 86_400_000
/** No schedule needs fire times past year 9999, and cron-parser's dates leave ISO form there. */
const LAST_WALL_MS = Date.UTC(9999, 11, 31, 23, 59)
/**
 * Wall-clock times that map to an instant already yielded (the rest of a gap, the repeated hour) are
 * passed over; a few hundred in a row at most for `* * * * *`. Far more means no further fire can come.
 */
const MAX_PASSED_OVER = 10_000

const zones = new Map<string, IANAZone>()

/** The IANA zone; throws RangeError for a name validation should have refused. */
export function timeZone(name: string): IANAZone {
  let zone = zones.get(name)
  if (zone === undefined) {
    zone = IANAZone.create(name)
    if (!zone.isValid) throw new RangeError(`invalid IANA time zone "${name}"`)
    if (zones.size < 1000) zones.set(name, zone)
  }
  return zone
}

/** UTC offset of `zone` at instant `t`, in ms. */
function offsetAt(zone: IANAZone, t: number): number {
  return Math.round(zone.offset(t) * MINUTE)
}

/** Smallest and largest offset in force within two days of instant `t`. */
function offsetsNear(zone: IANAZone, t: number): { min: number; max: number } {
  const offsets = [offsetAt(zone, t - 2 * DAY), offsetAt(zone, t), offsetAt(zone, t + 2 * DAY)]
  return { min: Math.min(...offsets), max: Math.max(...offsets) }
}

/**
 * The first instant at which the wall clock of `zone` reads `wall` (wall ms) or later: the policy above
 * in one line. Non-decreasing in `wall`, which is what makes the fire times monotonic.
 */
function firstInstantAtWall(zone: IANAZone, wall: number): number {
  const before = offsetAt(zone, wall - DAY)
  const after = offsetAt(zone, wall + DAY)
  let first: number | undefined
  for (const offset of before === after ? [before] : [before, after]) {
    const t = wall - offset
    // Two valid candidates: the repeated hour after falling back; the earlier one wins.
    if (t + offsetAt(zone, t) === wall && (first === undefined || t < first)) first = t
  }
  if (first !== undefined) return first
  // No instant shows this wall time: it lies in a spring-forward gap, which ends somewhere in (lo, hi].
  // wall clock at lo is before `wall`, at hi past it, and it only moves forward in between.
  let lo = wall - Math.max(before, after)
  let hi = wall - Math.min(before, after)
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2)
    if (mid + offsetAt(zone, mid) >= wall) hi = mid
    else lo = mid
  }
  return hi
}

/** cron-parser reading wall ms; undefined for an expression it refuses (`0 0 30 2 *`). */
function wallClock(cron: string, currentWallMs: number): CronExpression | undefined {
  try {
    return CronExpressionParser.parse(cron, { tz: 'UTC', currentDate: new Date(currentWallMs) })
  } catch {
    return undefined
  }
}

/** The next (or previous) matching wall time, or undefined when there is none (cron-parser's loop limit). */
function step(expression: CronExpression, direction: 'next' | 'prev'): number | undefined {
  let wall: number
  try {
    wall = (direction === 'next' ? expression.next() : expression.prev()).getTime()
  } catch {
    return undefined
  }
  return Number.isFinite(wall) && wall <= LAST_WALL_MS && wall >= -LAST_WALL_MS ? wall : undefined
}

/** Fire times strictly after instant `after` (ms), ascending, lazily: the caller takes what it needs. */
export function* fireTimesAfter(cron: string, zone: IANAZone, after: number): Generator<number, void, undefined> {
  // A wall time w fires at or before w - min offset, so none at or before after + min fires after `after`.
  const expression = wallClock(cron, after + offsetsNear(zone, after).min)
  if (expression === undefined) return
  let last = after
  for (let passedOver = 0; passedOver < MAX_PASSED_OVER; ) {
    const wall = step(expression, 'next')
    if (wall === undefined) return
    const t = firstInstantAtWall(zone, wall)
    if (t > last) {
      yield t
      last = t
      passedOver = 0
    } else {
      passedOver++
    }
  }
}

/** Fire times strictly before instant `before` (ms), descending, lazily. */
export function* fireTimesBefore(cron: string, zone: IANAZone, before: number): Generator<number, void, undefined> {
  // A wall time w fires at or after w - max offset, so only w < before + max can fire before `before`.
  const expression = wallClock(cron, before + offsetsNear(zone, before).max)
  if (expression === undefined) return
  let last = before
  for (let passedOver = 0; passedOver < MAX_PASSED_OVER; ) {
    const wall = step(expression, 'prev')
    if (wall === undefined) return
    const t = firstInstantAtWall(zone, wall)
    if (t < last) {
      yield t
      last = t
      passedOver = 0
    } else {
      passedOver++
    }
  }
}

/** The first value of a generator, closing it. */
export function first<T>(values: Iterable<T>): T | undefined {
  for (const value of values) return value
  return undefined
}
