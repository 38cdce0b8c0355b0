/**
 * `run.is_latest` (templates): whether a run covers the newest data interval its schedule has completed.
 * Airflow's "latest only": when a DAG catches up or is backfilled, the runs of older intervals do the
 * cheap per-interval work (ingest, materialize) and skip the expensive once-is-enough work (training),
 * which `when: "{{ run.is_latest }}"` on that task expresses. A manual run is always the latest.
 */
import type { DagSpec } from '../dag/dag-model.ts'
import type { Claim } from '../store/attempts.ts'
import { parseDagDate } from '../time/dates.ts'
import { isLatestInterval } from '../time/intervals.ts'
import { parseSchedule } from '../time/schedule.ts'

export function isLatestRun(spec: Pick<DagSpec, 'schedule' | 'timezone' | 'endDate'>, claim: Pick<Claim, 'runType' | 'dataIntervalEnd'>, now: Date): boolean {
  if (claim.runType === 'manual' || claim.runType === 'dataset' || spec.schedule === undefined) return true
  const schedule = parseSchedule(spec.schedule, spec.timezone)
  if (!schedule.ok) return true
  const endDate = spec.endDate === undefined ? undefined : parseDagDate(spec.endDate, spec.timezone)
  return isLatestInterval(schedule.schedule, spec.timezone, claim.dataIntervalEnd, now, endDate)
}
