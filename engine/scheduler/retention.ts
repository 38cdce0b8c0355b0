/**
 * cairn.yaml `retention` applied by the scheduler: every interval (the first time shortly after
 * start), delete finished runs older than the configured age. Beside the scheduling passes, never
 * inside one; with several schedulers one prunes at a time (an advisory lock), the others skip.
 */
import type { Logger } from 'pino'
import type { RetentionSettings } from '../config/retention.ts'
import type { Db } from '../store/db.ts'
import { isConnectionError } from '../store/db.ts'
import { pruneFinishedRunsExclusively } from '../store/prune.ts'

/** The first prune waits this long after start (or one interval, when shorter): start-up goes first. */
const FIRST_DELAY_MS = 30_000

export function startRetention(db: Db, log: Logger, settings: RetentionSettings, now: () => Date): { stop(): Promise<void> } {
  const abort = new AbortController()
  let timer: NodeJS.Timeout | undefined
  let pruning: Promise<void> | undefined

  const prune = async (): Promise<void> => {
    const before = new Date(now().getTime() - settings.runsOlderThanMs)
    try {
      const pruned = await pruneFinishedRunsExclusively(db, { before, signal: abort.signal })
      if (pruned && pruned.runs > 0) {
        log.info({ runs: pruned.runs, attempts: pruned.attempts, logLines: pruned.logLines, historyRows: pruned.historyRows, before: before.toISOString() }, 'retention: old finished runs deleted')
      }
    } catch (error) {
      if (!isConnectionError(error)) log.warn({ err: error }, 'retention: deleting old runs failed; trying again next interval')
    }
  }
  const schedule = (delayMs: number): void => {
    timer = setTimeout(() => {
      pruning = prune().finally(() => {
        pruning = undefined
        if (!abort.signal.aborted) schedule(settings.intervalMs)
      })
    }, delayMs)
    timer.unref()
  }
  schedule(Math.min(FIRST_DELAY_MS, settings.intervalMs))
  return {
    async stop() {
      abort.abort()
      clearTimeout(timer)
      await pruning
    },
  }
}
