/**
 * One LISTEN `cairn_log` connection for every log follower of the web process (not one per browser
 * tab), fanned out by run and task. Followers also poll, so a lost notification or a database that
 * refused LISTEN only slows them down.
 */
import type { Logger } from 'pino'
import type { Db } from '../store/db.ts'

export interface LogFeed {
  /** Calls `onLines` whenever lines of this task instance may have been written; returns the unsubscribe function. */
  subscribe(runId: string, taskId: string, onLines: () => void): () => void
  close(): Promise<void>
}

export function createLogFeed(db: Db, log: Logger): LogFeed {
  const subscribers = new Map<string, Set<() => void>>()
  let listening: Promise<(() => Promise<void>) | undefined> | undefined
  let closed = false

  const notifyAll = (): void => {
    for (const set of subscribers.values()) for (const fn of set) fn()
  }
  const start = (): void => {
    if (listening || closed) return
    listening = db
      .listen(
        'cairn_log',
        (payload) => {
          const [runId, taskId] = payload.split('\t')
          for (const fn of subscribers.get(`${runId}\t${taskId}`) ?? []) fn()
        },
        { onReconnect: notifyAll },
      )
      .catch((error: unknown) => {
        log.debug({ err: error }, 'LISTEN cairn_log failed; log followers poll')
        listening = undefined // the next subscriber tries again
        return undefined
      })
  }

  return {
    subscribe(runId, taskId, onLines) {
      start()
      const key = `${runId}\t${taskId}`
      let set = subscribers.get(key)
      if (!set) subscribers.set(key, (set = new Set()))
      set.add(onLines)
      return () => {
        set.delete(onLines)
        if (set.size === 0) subscribers.delete(key)
      }
    },
    async close() {
      closed = true
      const unlisten = await listening
      await unlisten?.()
    },
  }
}
