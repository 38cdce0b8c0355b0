/**
 * How long the scheduler's passes take, kept in memory and reported to the database every
 * `reportEveryMs` (one UPDATE, not one per pass), so /metrics can show scheduler loop time, and folds
 * the /metrics counters at the same pace.
 * A report that fails (the database is away) is simply tried again at the next interval.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import type { Db } from '../store/db.ts'
import { foldMetricDeltas } from '../store/metric-rollup.ts'
import { registerScheduler, reportPasses } from '../store/scheduler-stats.ts'
import type { PassTotals } from '../store/scheduler-stats.ts'

export interface PassStats {
  observe(seconds: number): void
  stop(): Promise<void>
}

export function startPassStats(db: Db, log: Logger, reportEveryMs = 5000): PassStats {
  const schedulerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
  const totals: PassTotals = { passes: 0, passSeconds: 0, lastPassSeconds: null, maxPassSeconds: null }
  let windowMax: number | null = null
  let registered = false

  const report = async (state: 'running' | 'stopped' = 'running'): Promise<void> => {
    try {
      if (!registered) {
        await registerScheduler(db, { schedulerId, hostname: hostname(), pid: process.pid })
        registered = true
      }
      await reportPasses(db, schedulerId, { ...totals, maxPassSeconds: windowMax ?? totals.maxPassSeconds }, state)
      if (windowMax !== null) totals.maxPassSeconds = windowMax
      windowMax = null
      // The metric deltas that state changes append are folded here, so they never pile up when
      // nobody scrapes /metrics; with several schedulers one folds and the others skip.
      await db.tx((q) => foldMetricDeltas(q))
    } catch (error) {
      log.debug({ err: error }, 'scheduler statistics not reported')
    }
  }
  // The first report comes with the first pass (see observe), not as extra round trips before it.
  const timer = setInterval(() => void report(), reportEveryMs)
  timer.unref()

  return {
    observe(seconds) {
      totals.passes++
      totals.passSeconds += seconds
      totals.lastPassSeconds = seconds
      windowMax = Math.max(windowMax ?? 0, seconds)
      // A new scheduler shows its first pass at once, not a report window later.
      if (totals.passes === 1) void report()
    },
    async stop() {
      clearInterval(timer)
      await report('stopped')
    },
  }
}
