/**
 * Data intervals of scheduled DAGs (SPEC sections 1, 2 and 5). Pure: the scheduler passes `now` in, and
 * nothing here reads a clock or a store.
 *
 *   fire time      an instant the cron expression matches on the DAG's wall clock (DST rules below).
 *   data interval  [fire_k, fire_k+1), consecutive fire times; its start is the run's logical date.
 *                  `@once` has a single interval, [start_date, start_date].
 *   due            an interval whose end has passed (end <= now): its run is created then, never before.
 *
 * Which intervals exist: every start is a fire time >= start_date and, when end_date is set, <= end_date.
 * An interval that starts at or before end_date still runs though it ends after it (as in Airflow).
 *
 * Catchup, i.e. what `dueIntervals` returns. Never an interval that starts at or before the last logical
 * date, always oldest first:
 *   all     every due interval, `limit` at a time. The caller creates those runs and asks again with the
 *           new last logical date, so a DAG with 10,000 missed intervals is worked off in bounded slices.
 *   latest  (default) only the most recent due interval; older missed ones are skipped for good. This is
 *           Airflow's catchup=False: a DAG switched on with a start_date a year ago runs last night's
 *           interval at once, and after a scheduler outage only the last missed interval runs.
 *   none    like `latest`, except that an interval that ended before the DAG was switched on (`enabledAt`:
 *           first loaded unpaused, or last unpaused) never runs, not even the most recent one. The first
 *           run is for the interval in progress when the DAG was switched on, created when it ends (Kestra's
 *           recoverMissedSchedules: NONE). So none runs a subset of what latest runs, which runs a subset of all.
 *
 * DST (details and the reasons in fire-times.ts): each matching wall-clock time fires at the first
 * instant the DAG's wall clock reads it or later. A time skipped by a spring-forward gap fires once, at
 * the end of the gap (Berlin 02:30 on 2026-03-29 -> 03:00 CEST); a time repeated by falling back fires
 * once, at its first occurrence (Berlin 02:30 on 2026-10-25 -> 02:30 CEST only). Fire times are strictly
 * increasing with no duplicates, so intervals are contiguous and never share a start.
 *
 * Bounded work: every function looks at a number of fire times proportional to what it returns (plus
 * a constant); an expression that never fires again ends the search (cron-parser's loop limit) instead of
 * looping. `intervalsBetween` returns the whole range, so use `intervalsFrom` to walk a huge one lazily.
 */
import { DateTime } from 'luxon'
import type { Schedule } from './schedule.ts'
import { fireTimesAfter, fireTimesBefore, first, timeZone } from './fire-times.ts'

export type Interval = { start: Date; end: Date }

const CATCHUP_MODES = ['none', 'latest', 'all'] as const
export type Catchup = (typeof CATCHUP_MODES)[number]

type Bounds = {
  /** No interval starts before it. */
  startDate?: Date | undefined
  /** No interval starts after it. */
  endDate?: Date | undefined
}

function interval(start: number, end: number): Interval {
  return { start: new Date(start), end: new Date(end) }
}

/** The interval starting at fire time `start`, or undefined when the expression never fires again. */
function intervalAt(cron: string, timezone: string, start: number): Interval | undefined {
  const end = first(fireTimesAfter(cron, timeZone(timezone), start))
  return end === undefined ? undefined : interval(start, end)
}

/**
 * Intervals whose start is >= `from`, and within the bounds, in order, lazily. `@once` yields its one
 * interval when `startDate` is given and >= `from`.
 */
export function* intervalsFrom(
  schedule: Schedule,
  timezone: string,
  from: Date,
  bounds: Bounds = {},
): Generator<Interval, void, undefined> {
  const zone = timeZone(timezone)
  const endDate = bounds.endDate?.getTime() ?? Infinity
  if (schedule.kind === 'once') {
    const start = bounds.startDate?.getTime()
    if (start !== undefined && start >= from.getTime() && start <= endDate) yield interval(start, start)
    return
  }
  const lower = Math.max(from.getTime(), bounds.startDate?.getTime() ?? -Infinity)
  let start: number | undefined
  for (const fire of fireTimesAfter(schedule.cron, zone, lower - 1)) {
    if (start !== undefined) yield interval(start, fire)
    if (fire > endDate) return
    start = fire
  }
}

/**
 * The first interval whose start is >= `after` (>= `startDate` when `after` is undefined), or undefined
 * when no interval starts at or before `endDate` any more (or the expression never fires again).
 */
export function nextInterval(
  schedule: Schedule,
  timezone: string,
  after: Date | undefined,
  startDate: Date,
  endDate?: Date,
): Interval | undefined {
  return first(intervalsFrom(schedule, timezone, after ?? startDate, { startDate, endDate }))
}

/** Backfill (`cairn backfill --from --to`): every interval whose start is in [from, to], within the bounds. */
export function intervalsBetween(
  schedule: Schedule,
  timezone: string,
  from: Date,
  to: Date,
  startDate?: Date,
  endDate?: Date,
): Interval[] {
  const last = Math.min(to.getTime(), endDate?.getTime() ?? Infinity)
  const found: Interval[] = []
  for (const next of intervalsFrom(schedule, timezone, from, { startDate, endDate: new Date(last) })) found.push(next)
  return found
}

/**
 * Whether the interval ending at `intervalEnd` is the newest one the schedule has completed at `now`:
 * the interval after it has not ended yet (or there is none, past end_date). Airflow's "latest only":
 * the runs a catchup or a backfill creates for older intervals are not the latest.
 */
export function isLatestInterval(schedule: Schedule, timezone: string, intervalEnd: Date, now: Date, endDate?: Date): boolean {
  const next = first(intervalsFrom(schedule, timezone, intervalEnd, { endDate }))
  return next === undefined || next.end.getTime() > now.getTime()
}

export type DueIntervalsInput = {
  schedule: Schedule
  timezone: string
  startDate: Date
  endDate?: Date | undefined
  catchup: Catchup
  /** Logical date of the DAG's newest scheduled run; nothing at or before it is returned. */
  lastLogicalDate: Date | undefined
  now: Date
  /** At most this many intervals (only `all` can return more than one). */
  limit: number
  /**
   * When the DAG was switched on: first loaded unpaused, or last unpaused. Used by `none` only; when
   * undefined, the DAG counts as on since start_date and `none` behaves as `latest`.
   */
  enabledAt?: Date | undefined
}

/** The intervals whose runs should be created now, oldest first (see the catchup table at the top). */
export function dueIntervals(input: DueIntervalsInput): Interval[] {
  const { schedule, timezone, startDate, endDate, catchup, lastLogicalDate, now, limit } = input
  if (!(limit >= 1)) return []
  const notBefore = Math.max(startDate.getTime(), lastLogicalDate === undefined ? -Infinity : lastLogicalDate.getTime() + 1)
  const isNew = (candidate: Interval) => candidate.start.getTime() >= notBefore

  if (catchup === 'all') {
    const due: Interval[] = []
    for (const next of intervalsFrom(schedule, timezone, new Date(notBefore), { startDate, endDate })) {
      if (next.end.getTime() > now.getTime() || due.length >= limit) break
      due.push(next)
    }
    return due
  }

  const latest = latestDueInterval(schedule, timezone, startDate, endDate, now)
  if (latest === undefined || !isNew(latest)) return []
  if (catchup === 'none' && input.enabledAt !== undefined && latest.end.getTime() < input.enabledAt.getTime()) return []
  return [latest]
}

/**
 * The most recent interval with end <= now and start <= endDate. For cron schedules start_date is left
 * to the caller: the search runs backwards from `now`, so it costs the same after ten years of missed
 * intervals as after one.
 */
function latestDueInterval(
  schedule: Schedule,
  timezone: string,
  startDate: Date,
  endDate: Date | undefined,
  now: Date,
): Interval | undefined {
  if (schedule.kind === 'once') {
    const start = startDate.getTime()
    return start <= now.getTime() && start <= (endDate?.getTime() ?? Infinity) ? interval(start, start) : undefined
  }
  const zone = timeZone(timezone)
  const fires = fireTimesBefore(schedule.cron, zone, now.getTime() + 1)
  const end = fires.next()
  const start = fires.next()
  fires.return()
  if (end.done || start.done) return undefined
  if (endDate === undefined || start.value <= endDate.getTime()) return interval(start.value, end.value)
  // The newest due interval starts after end_date: the last one that exists is the one starting on or before it.
  const lastStart = first(fireTimesBefore(schedule.cron, zone, endDate.getTime() + 1))
  return lastStart === undefined ? undefined : intervalAt(schedule.cron, timezone, lastStart)
}

/** `ds`: the logical date as YYYY-MM-DD in the DAG's time zone (SPEC section 2). */
export function formatDs(date: Date, timezone: string): string {
  return DateTime.fromMillis(date.getTime(), { zone: timeZone(timezone) }).toFormat('yyyy-MM-dd')
}

/** `ds_nodash`: the logical date as YYYYMMDD in the DAG's time zone. */
export function formatDsNodash(date: Date, timezone: string): string {
  return DateTime.fromMillis(date.getTime(), { zone: timeZone(timezone) }).toFormat('yyyyMMdd')
}
