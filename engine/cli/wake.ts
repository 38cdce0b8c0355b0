/**
 * Waiting on the database: LISTEN for a fast wake-up plus a poll as the fallback, because a
 * notification can be lost (a reconnect, a pooler that drops LISTEN) and the poll makes that harmless.
 */
import type { Db } from '../store/db.ts'
import { getRun } from '../store/runs.ts'
import type { RunRow } from '../store/runs.ts'
import { isTerminalRunState } from '../state/states.ts'
import { createWaker } from '../runtime/waker.ts'

/** LISTEN when the database allows it; otherwise the caller's poll alone does the work. */
export async function listenOrPoll(db: Db, channel: string, onNotify: (payload: string) => void, onReconnect: () => void): Promise<() => Promise<void>> {
  try {
    return await db.listen(channel, onNotify, { onReconnect })
  } catch {
    return async () => {}
  }
}

/** Waits until the run is success, failed or cancelled, and returns it. */
export async function waitForRunEnd(db: Db, runId: string, dagId: string, pollMs = 500): Promise<RunRow> {
  const waker = createWaker()
  const unlisten = await listenOrPoll(db, 'cairn_wake', (payload) => payload === dagId && waker.wake(), () => waker.wake())
  try {
    for (;;) {
      const run = await getRun(db, runId)
      if (!run) throw new Error(`run ${runId} disappeared while waiting for it`)
      if (isTerminalRunState(run.state)) return run
      await waker.sleep(pollMs)
    }
  } finally {
    await unlisten()
  }
}
