/**
 * Writes that wait out a database outage. A task keeps printing while Postgres is away (restarting
 * after a crash, failing over): dropping those lines would leave holes in its log, keeping them all
 * could exhaust the worker's memory. A write that fails with a connection error is kept, its size
 * counted against `maxBytes`, and tried again with backoff until it succeeds, fails for another
 * reason (rethrown), or the buffer is abandoned at shutdown. Writes that would go past `maxBytes`
 * are dropped at once, and the caller is told so.
 *
 * Only for writes that may run twice: a connection lost during COMMIT can leave a write committed
 * although it reported an error.
 */
import type { Logger } from 'pino'
import { isConnectionError } from '../store/db.ts'

export interface OutageBuffer {
  /** Runs `fn` until it succeeds (true) or is dropped (false: over the bound, or abandoned). */
  write(bytes: number, fn: () => Promise<void>): Promise<boolean>
  /** Bytes of writes now waiting for the database. */
  readonly waitingBytes: number
  /** Gives up on every waiting write (they resolve false), and on writes to come. */
  abandon(): void
}

export interface OutageBufferOptions {
  log: Logger
  /** Bytes that may wait for the database, all writes together. @default 16 MiB */
  maxBytes?: number
}

export function createOutageBuffer({ log, maxBytes = 16 * 1024 * 1024 }: OutageBufferOptions): OutageBuffer {
  const abandoned = new AbortController()
  let waitingBytes = 0
  let warnedFull = false

  const wait = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done(): void {
        clearTimeout(timer)
        abandoned.signal.removeEventListener('abort', done)
        resolve()
      }
      abandoned.signal.addEventListener('abort', done, { once: true })
    })

  return {
    async write(bytes, fn) {
      let counted = false
      let delay = 100
      try {
        for (;;) {
          if (abandoned.signal.aborted) return false
          try {
            await fn()
            return true
          } catch (error) {
            if (!isConnectionError(error)) throw error
            if (!counted) {
              if (waitingBytes + bytes > maxBytes) {
                if (!warnedFull) log.warn({ maxBytes }, 'the database is unreachable and the buffer of waiting writes is full; dropping writes')
                warnedFull = true
                return false
              }
              waitingBytes += bytes
              counted = true
            }
            await wait(delay * (0.5 + Math.random() / 2))
            delay = Math.min(delay * 2, 2000)
          }
        }
      } finally {
        if (counted) waitingBytes -= bytes
        if (waitingBytes === 0) warnedFull = false
      }
    },
    get waitingBytes() {
      return waitingBytes
    },
    abandon() {
      abandoned.abort()
    },
  }
}
