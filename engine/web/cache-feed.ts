/**
 * One LISTEN connection per web process on the caches' channel (store/cache-notify.ts), so that the
 * token and online-row caches drop what a committed write made wrong. The caches answer only while
 * the feed is live: until LISTEN is first in place, and from the moment its connection is lost until
 * it is back, every request goes to the database (notifications sent meanwhile are lost, so the
 * caches are emptied when it comes back).
 */
import type { Logger } from 'pino'
import type { Db } from '../store/db.ts'
import { CACHE_CHANNEL, onLocalCredentialChange, parseCacheNotice } from '../store/cache-notify.ts'

export interface CacheFeedHandlers {
  /** A credential changed (a token revoked, a user disabled or enabled). */
  credentials(): void
  /** Online rows of the view were written. */
  online(view: string): void
  /** Notifications may have been missed: forget everything. */
  reset(): void
}

export interface CacheFeed {
  /** Notifications are being received now, so the caches may answer. */
  live(): boolean
  close(): Promise<void>
}

export interface CacheFeedOptions {
  /** Wait before trying LISTEN again when the first attempt failed. @default 2000 */
  retryMs?: number
}

/** Starts listening (waits for the first attempt; a failure leaves the feed down and retrying). */
export async function startCacheFeed(db: Db, log: Logger, handlers: CacheFeedHandlers, options: CacheFeedOptions = {}): Promise<CacheFeed> {
  let live = false
  let closed = false
  let unlisten: (() => Promise<void>) | undefined
  let retry: NodeJS.Timeout | undefined
  const stopLocal = onLocalCredentialChange(handlers.credentials)

  const onNotify = (payload: string): void => {
    const notice = parseCacheNotice(payload)
    if (notice.kind === 'credentials') handlers.credentials()
    else if (notice.kind === 'online') handlers.online(notice.view)
  }
  const attempt = async (): Promise<void> => {
    try {
      const stop = await db.listen(CACHE_CHANNEL, onNotify, {
        onLost: () => {
          live = false
          handlers.reset()
        },
        onReconnect: () => {
          handlers.reset()
          live = true
        },
      })
      if (closed) {
        await stop()
        return
      }
      unlisten = stop
      handlers.reset()
      live = true
    } catch (error) {
      if (closed) return
      log.warn({ err: error }, 'LISTEN for cache notifications failed; every request asks the database until it works')
      retry = setTimeout(() => void attempt(), options.retryMs ?? 2000)
      retry.unref()
    }
  }
  await attempt()

  return {
    live: () => live,
    async close() {
      closed = true
      live = false
      clearTimeout(retry)
      stopLocal()
      await unlisten?.()
    },
  }
}
