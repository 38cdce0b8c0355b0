/**
 * Workers sweep the datasets directory for orphan staged folders (engine/data/staged-sweep.ts) now and
 * then, one worker at a time (a transaction-scoped advisory lock; the others skip that round).
 */
import type { Logger } from 'pino'
import { sweepStagedFolders } from '../data/staged-sweep.ts'
import type { Db } from '../store/db.ts'
import { isConnectionError } from '../store/db.ts'

export interface StagedSweeper {
  stop(): Promise<void>
}

export function startStagedSweeper(options: { db: Db; dir: string; log: Logger; everyMs?: number; firstAfterMs?: number }): StagedSweeper {
  const { db, dir, log } = options
  let running: Promise<void> | undefined
  const sweep = (): void => {
    if (running) return
    running = db
      .tx(async (q) => {
        const { rows } = await q.query<{ locked: boolean }>(`SELECT pg_try_advisory_xact_lock(hashtext('cairn.staged_sweep')) AS locked`)
        if (!rows[0]!.locked) return
        const removed = await sweepStagedFolders(q, dir)
        if (removed.length > 0) log.info({ removed: removed.length, folders: removed.slice(0, 20) }, 'removed staged folders that no version will ever name')
      })
      .catch((error: unknown) => {
        if (!isConnectionError(error)) log.warn({ error: String(error) }, 'sweeping staged folders failed; trying again later')
      })
      .finally(() => (running = undefined))
  }
  const first = setTimeout(sweep, options.firstAfterMs ?? 30_000)
  const timer = setInterval(sweep, options.everyMs ?? 600_000)
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
