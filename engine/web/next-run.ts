/**
 * The next run the schedule will create for a DAG, as the API shows it: the interval the scheduler
 * creates next, and when (its end: a run is created once its interval is over). Pure; mirrors the
 * scheduler's use of dueIntervals and nextInterval.
 */
import type { DagSpec } from '../dag/dag-model.ts'
import { parseDagDate } from '../time/dates.ts'
import { dueIntervals, nextInterval } from '../time/intervals.ts'
import { parseSchedule } from '../time/schedule.ts'

export interface NextRun {
  logicalDate: Date
  dataIntervalEnd: Date
  /** When the scheduler creates the run; in the past when it is due now (created on its next pass). */
  runAfter: Date
}

export function nextScheduledRun(spec: DagSpec, dag: { paused: boolean; scheduleCursor: Date | null; enabledAt: Date | null }, now: Date): NextRun | null {
  if (dag.paused || spec.schedule === undefined || spec.startDate === undefined) return null
  const parsed = parseSchedule(spec.schedule, spec.timezone)
  const startDate = parseDagDate(spec.startDate, spec.timezone)
  if (!parsed.ok || startDate === undefined) return null
  const endDate = spec.endDate ? parseDagDate(spec.endDate, spec.timezone) : undefined
  const base = { schedule: parsed.schedule, timezone: spec.timezone, startDate, endDate, now, limit: 1 }
  const due = dueIntervals({ ...base, catchup: spec.catchup, lastLogicalDate: dag.scheduleCursor ?? undefined, enabledAt: dag.enabledAt ?? undefined })[0]
  if (due) return { logicalDate: due.start, dataIntervalEnd: due.end, runAfter: due.end }
  // Nothing due: the next run is for the first interval after the cursor that has not ended yet. The
  // newest interval that has ended bounds the search, so a long-paused DAG costs no walk through history.
  const ended = dueIntervals({ ...base, catchup: 'latest', lastLogicalDate: undefined })[0]
  const afterCursor = dag.scheduleCursor ? dag.scheduleCursor.getTime() + 1 : -Infinity
  const from = Math.max(afterCursor, ended ? ended.end.getTime() : -Infinity)
  const next = nextInterval(parsed.schedule, spec.timezone, Number.isFinite(from) ? new Date(from) : undefined, startDate, endDate)
  return next ? { logicalDate: next.start, dataIntervalEnd: next.end, runAfter: next.end } : null
}
