/**
 * What workers sweep now and then, each sweep never running twice at once in a process:
 * - orphan staged folders of the datasets directory (engine/data/staged-sweep.ts), one worker at a time (a
 *   transaction-scoped advisory lock; the others skip that round);
 * - the attempt folders of pruned runs under the worker's work root (work-sweep.ts). Work roots may be one
 *   per machine, so every worker sweeps its own; two workers sharing a root may both try a folder, and the
 *   one that finds it gone says nothing.
 */
import type { Logger } from 'pino'
import { sweepStagedFolders } from '../data/staged-sweep.ts'
import type { Db } from '../store/db.ts'
import { isConnectionError } from '../store/db.ts'
import type { TaskUser } from '../process/task-user.ts'
import { sweepPrunedRunFolders } from './work-sweep.ts'

export interface Sweeper {
  stop(): Promise<void>
}

export interface SweepTiming {
  /** @default 600000 */
  everyMs?: number
  /** @default 30000 */
  firstAfterMs?: number
}

function every(what: string, log: Logger, sweep: () => Promise<void>, timing: SweepTiming): Sweeper {
  let running: Promise<void> | undefined
  const round = (): void => {
    if (running) return
    running = sweep()
      .catch((error: unknown) => {
        if (!isConnectionError(error)) log.warn({ error: String(error) }, `sweeping ${what} failed; trying again later`)
      })
      .finally(() => (running = undefined))
  }
  const first = setTimeout(round, timing.firstAfterMs ?? 30_000)
  const timer = setInterval(round, timing.everyMs ?? 600_000)
  first.unref()
  timer.unref()
  return {
    async stop() {
      clearTimeout(first)
      clearInterval(timer)
      await running
    },
  }
}

export function startStagedSweeper(options: { db: Db; dir: string; log: Logger } & SweepTiming): Sweeper {
  const { db, dir, log } = options
  return every('staged folders', log, () =>
    db.tx(async (q) => {
      const { rows } = await q.query<{ locked: boolean }>(`SELECT pg_try_advisory_xact_lock(hashtext('cairn.staged_sweep')) AS locked`)
      if (!rows[0]!.locked) return
      const removed = await sweepStagedFolders(q, dir)
      if (removed.length > 0) log.info({ removed: removed.length, folders: removed.slice(0, 20) }, 'removed staged folders that no version will ever name')
    }), options)
}

export function startWorkSweeper(options: { db: Db; workRoot: string; user?: TaskUser; log: Logger } & SweepTiming): Sweeper {
  const { db, workRoot, log } = options
  const controller = new AbortController()
  const sweeper = every('attempt folders', log, async () => {
    const { removed, failed } = await sweepPrunedRunFolders(db, workRoot, { ...(options.user ? { user: options.user } : {}), signal: controller.signal })
    if (removed.length > 0) log.info({ removed: removed.length, runs: removed.slice(0, 20) }, 'removed the attempt folders of pruned runs')
    for (const { folder, message } of failed.slice(0, 20)) log.warn({ run: folder, error: message }, 'could not remove the attempt folders of a pruned run; trying again later')
  }, options)
  return {
    async stop() {
      controller.abort()
      await sweeper.stop()
    },
  }
}
