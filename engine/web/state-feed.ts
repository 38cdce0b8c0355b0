/**
 * Live state changes for every browser of the web process from one poller (not one per tab): while
 * anyone listens, it reads the append-only state history after the last id it saw, and the DAG list's
 * signature, every `pollMs`. It reads only what was committed, so a history row whose transaction
 * commits after a later id was read is not announced; the next change of that run announces it, and
 * pages re-read whole views on every event, so the page is at most one change behind, never wrong.
 */
import type { Logger } from 'pino'
import type { Db } from '../store/db.ts'
import { dagListSignature, latestHistoryId, stateChangesAfter } from '../store/state-changes.ts'
import type { StateChange } from '../store/state-changes.ts'

export type FeedEvent = { kind: 'states'; changes: StateChange[] } | { kind: 'dags' }

export interface StateFeed {
  /** Calls `onEvent` for every batch of changes from now on; returns the unsubscribe function. */
  subscribe(onEvent: (event: FeedEvent) => void): () => void
  close(): void
}

const BATCH = 2000

export function createStateFeed(db: Db, log: Logger, pollMs: number): StateFeed {
  const subscribers = new Set<(event: FeedEvent) => void>()
  let timer: NodeJS.Timeout | undefined
  let lastId: number | undefined
  let signature: string | undefined
  let closed = false

  const emit = (event: FeedEvent): void => {
    for (const fn of subscribers) {
      try {
        fn(event)
      } catch (error) {
        log.warn({ err: error }, 'a live-state subscriber failed')
      }
    }
  }

  async function poll(): Promise<void> {
    try {
      if (lastId === undefined) lastId = await latestHistoryId(db)
      for (;;) {
        const changes = await stateChangesAfter(db, lastId, BATCH)
        if (changes.length === 0) break
        lastId = changes.at(-1)!.id
        emit({ kind: 'states', changes })
        if (changes.length < BATCH) break
      }
      const now = await dagListSignature(db)
      if (signature !== undefined && now !== signature) emit({ kind: 'dags' })
      signature = now
    } catch (error) {
      // The database is away: browsers keep their streams and catch up when it answers again.
      log.debug({ err: error }, 'live-state poll failed')
    }
  }

  function schedule(): void {
    if (closed || subscribers.size === 0) {
      timer = undefined
      return
    }
    timer = setTimeout(() => void poll().finally(schedule), pollMs)
  }

  return {
    subscribe(onEvent) {
      subscribers.add(onEvent)
      if (!timer && !closed) {
        // First listener after a quiet spell: start from the present, not from whatever happened meanwhile.
        lastId = undefined
        signature = undefined
        timer = setTimeout(() => void poll().finally(schedule), 0)
      }
      return () => {
        subscribers.delete(onEvent)
      }
    },
    close() {
      closed = true
      if (timer) clearTimeout(timer)
      subscribers.clear()
    },
  }
}
