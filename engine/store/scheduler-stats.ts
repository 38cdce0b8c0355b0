/** Scheduler rows: who runs, and how long their passes take (read by /metrics). */
import type { Queryable } from './queryable.ts'

export interface PassTotals {
  passes: number
  passSeconds: number
  lastPassSeconds: number | null
  /** Longest pass since the previous report. */
  maxPassSeconds: number | null
}

export async function registerScheduler(q: Queryable, input: { schedulerId: string; hostname: string; pid: number }): Promise<void> {
  await q.query(
    `INSERT INTO cairn.scheduler (scheduler_id, hostname, pid, state) VALUES ($1, $2, $3, 'running')
     ON CONFLICT (scheduler_id) DO UPDATE SET state = 'running', heartbeat_at = clock_timestamp()`,
    [input.schedulerId, input.hostname, input.pid],
  )
}

export async function reportPasses(q: Queryable, schedulerId: string, totals: PassTotals, state: 'running' | 'stopped' = 'running'): Promise<void> {
  await q.query(
    `UPDATE cairn.scheduler SET heartbeat_at = clock_timestamp(), passes = $2, pass_seconds = $3,
            last_pass_seconds = $4, max_pass_seconds = $5, state = $6
      WHERE scheduler_id = $1`,
    [schedulerId, totals.passes, totals.passSeconds, totals.lastPassSeconds, totals.maxPassSeconds, state],
  )
}

export interface SchedulerStatsRow {
  scheduler_id: string
  hostname: string
  passes: string
  pass_seconds: number
  last_pass_seconds: number | null
  max_pass_seconds: number | null
  age: number
}

/** Running schedulers heard from in the last `withinSeconds`. */
export async function listSchedulerStats(q: Queryable, withinSeconds = 120): Promise<SchedulerStatsRow[]> {
  const { rows } = await q.query<SchedulerStatsRow>(
    `SELECT scheduler_id, hostname, passes::text, pass_seconds, last_pass_seconds, max_pass_seconds,
            extract(epoch FROM clock_timestamp() - heartbeat_at)::float8 AS age
       FROM cairn.scheduler
      WHERE state = 'running' AND heartbeat_at > clock_timestamp() - make_interval(secs => $1)
      ORDER BY scheduler_id`,
    [withinSeconds],
  )
  return rows
}
