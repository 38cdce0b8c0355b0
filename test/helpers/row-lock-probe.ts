/**
 * How long one DAG row could not be locked (what `cairn pause` of that DAG, or the scheduler creating
 * its runs, would have waited for), probed every 10 ms with FOR UPDATE NOWAIT. Used by the DAG sync
 * test and its benchmark.
 */
import type { Db } from '../../engine/store/db.ts'

export function probeRowLock(db: Db, dagId: string): { stop(): Promise<number> } {
  let stopped = false
  let longest = 0
  const done = (async () => {
    let lockedSince: number | undefined
    while (!stopped) {
      const started = performance.now()
      const locked = await db.tx((q) => q.query('SELECT 1 FROM cairn.dag WHERE dag_id = $1 FOR UPDATE NOWAIT', [dagId])).then(
        () => false,
        (error: { code?: string }) => {
          if (error.code !== '55P03') throw error
          return true
        },
      )
      if (locked) lockedSince ??= started
      else if (lockedSince !== undefined) {
        longest = Math.max(longest, started - lockedSince)
        lockedSince = undefined
      }
      await new Promise((r) => setTimeout(r, 10))
    }
    if (lockedSince !== undefined) longest = Math.max(longest, performance.now() - lockedSince)
  })()
  return {
    async stop() {
      stopped = true
      await done
      return longest
    },
  }
}
