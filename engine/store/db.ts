/**
 * The engine's handle on Postgres: a pg.Pool with transactions that retry on serialization failures and
 * deadlocks, LISTEN on a dedicated connection that comes back after Postgres restarts, and withReconnect
 * for idempotent work that should wait out a restart instead of failing.
 */
import pg from 'pg'
import type { Notification, PoolClient, QueryResult, QueryResultRow } from 'pg'
import type { Logger } from 'pino'
import type { Queryable } from './queryable.ts'

export interface DbOptions {
  log: Logger
  /** Connections in the pool. @default 10 */
  max?: number
  /** Shown in pg_stat_activity. @default "cairn" */
  applicationName?: string
  /** Give up opening a connection after this long (a server that accepts TCP but never answers). @default 10000 */
  connectTimeoutMs?: number
}

export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable'

export interface TxOptions {
  /** @default "read committed" */
  isolation?: IsolationLevel
  /** Runs of `fn` in total when Postgres aborts it with a serialization failure (40001) or deadlock (40P01). @default 5 */
  maxAttempts?: number
}

export interface ListenOptions {
  /**
   * Called after the connection was lost and LISTEN is in place again. Notifications sent in between are
   * lost, so a listener that must not miss work should re-check the state here.
   */
  onReconnect?: () => void
  /** Called when the connection is lost (notifications may be missed from now until onReconnect). */
  onLost?: () => void
}

export interface Db extends Queryable {
  readonly pool: pg.Pool
  /** The pool: every transaction's handle has the same scope (see Queryable.scope). */
  readonly scope: object
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>
  /**
   * Runs `fn` in one transaction: COMMIT when it resolves, ROLLBACK when it throws. On a serialization
   * failure or deadlock the whole transaction runs again, so `fn` must have no effects outside it.
   */
  tx<T>(fn: (q: Queryable) => Promise<T>, options?: TxOptions): Promise<T>
  /**
   * LISTEN on `channel` on a dedicated connection (one per call), reconnecting and re-LISTENing for as long
   * as it takes when the connection drops. Rejects when the first connection fails (safe to wrap in
   * withReconnect); resolves to a function that stops listening.
   */
  listen(channel: string, onNotify: (payload: string) => void, options?: ListenOptions): Promise<() => Promise<void>>
  /** Ends the pool and every listener. Idempotent. */
  close(): Promise<void>
}

const RETRYABLE_TX_CODES = new Set(['40001', '40P01'])
const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'])
/** admin_shutdown, crash_shutdown, cannot_connect_now (starting up or shutting down). */
const CONNECTION_SQLSTATES = new Set(['57P01', '57P02', '57P03'])

/** True when `error` means the database could not be reached or the connection was lost, not that the SQL failed. */
export function isConnectionError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const { code, message, errors } = error as { code?: unknown; message?: unknown; errors?: unknown }
  if (typeof code === 'string') {
    if (CONNECTION_ERRNOS.has(code) || CONNECTION_SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true
  }
  if (typeof message === 'string' && /Connection terminated|not queryable|timeout exceeded when trying to connect|connect ECONNREFUSED/.test(message)) return true
  // Node's happy-eyeballs connect reports every address it tried in an AggregateError.
  return Array.isArray(errors) && errors.some(isConnectionError)
}

export interface ReconnectOptions {
  log: Logger
  /** Keep retrying for this long before rethrowing the connection error. @default 60000 */
  maxWaitMs?: number
  signal?: AbortSignal
}

/**
 * Runs `fn`, retrying it with backoff while it fails with a connection error (see isConnectionError), for
 * up to `maxWaitMs`. Other errors are rethrown at once.
 *
 * Only for idempotent operations: when a connection drops during a COMMIT, the transaction may have
 * committed although the caller saw an error, and `fn` then runs a second time.
 */
export async function withReconnect<T>(fn: () => Promise<T>, { log, maxWaitMs = 60_000, signal }: ReconnectOptions): Promise<T> {
  const started = Date.now()
  let delay = 100
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted()
    try {
      const result = await fn()
      if (attempt > 1) log.info({ attempts: attempt, ms: Date.now() - started }, 'database reachable again')
      return result
    } catch (error) {
      const waited = Date.now() - started
      if (!isConnectionError(error) || waited >= maxWaitMs) throw error
      if (attempt === 1) log.warn({ error: errorText(error), ...(Number.isFinite(maxWaitMs) ? { maxWaitMs } : {}) }, 'database unreachable; retrying')
      else log.debug({ err: error, attempt }, 'database still unreachable')
      await sleep(Math.min(delay * (0.5 + Math.random() / 2), maxWaitMs - waited), signal)
      delay = Math.min(delay * 2, 2000)
    }
  }
}

export function createDb(url: string, options: DbOptions): Db {
  const log = options.log.child({ component: 'db' })
  const applicationName = options.applicationName ?? 'cairn'
  const connectionTimeoutMillis = options.connectTimeoutMs ?? 10_000
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 10, application_name: applicationName, connectionTimeoutMillis, keepAlive: true, idleTimeoutMillis: 30_000 })
  // An idle connection dropped by a Postgres restart: the pool discards it; a thrown error would kill the process.
  pool.on('error', (error) => log.warn({ error: errorText(error) }, 'idle database connection lost'))
  const listeners = new Set<() => Promise<void>>()
  let closing: Promise<void> | undefined

  async function tx<T>(fn: (q: Queryable) => Promise<T>, txOptions: TxOptions = {}): Promise<T> {
    const maxAttempts = txOptions.maxAttempts ?? 5
    const begin = `BEGIN ISOLATION LEVEL ${(txOptions.isolation ?? 'read committed').toUpperCase()}`
    for (let attempt = 1; ; attempt++) {
      const client = await pool.connect()
      // A checked-out client has no error listener of the pool's: without ours, a restart between two
      // statements would raise an unhandled 'error' event.
      let broken: unknown
      const onError = (error: Error) => (broken = error)
      client.on('error', onError)
      let ended = false
      const q: Queryable = {
        scope: pool,
        query: <R extends QueryResultRow>(text: string, values?: unknown[]) => {
          if (ended) return Promise.reject(new Error('query on a transaction that has already ended (a query in tx() was not awaited)'))
          return client.query<R>(text, values)
        },
      }
      try {
        await client.query(begin)
        const result = await fn(q)
        await client.query('COMMIT')
        return result
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: unknown) => (broken ??= rollbackError))
        if (isConnectionError(error)) broken ??= error
        const code = (error as { code?: unknown }).code
        if (typeof code !== 'string' || !RETRYABLE_TX_CODES.has(code) || attempt >= maxAttempts) throw error
        log.debug({ code, attempt }, 'transaction conflict; running it again')
      } finally {
        ended = true
        client.removeListener('error', onError)
        release(client, broken)
      }
      await sleep(Math.random() * 20 * attempt)
    }
  }

  async function listen(channel: string, onNotify: (payload: string) => void, listenOptions: ListenOptions = {}): Promise<() => Promise<void>> {
    let client: pg.Client | undefined
    let stopped = false
    let timer: NodeJS.Timeout | undefined
    let delay = 100
    let failures = 0

    const connect = async (): Promise<void> => {
      const c = new pg.Client({ connectionString: url, application_name: applicationName, connectionTimeoutMillis, keepAlive: true })
      c.on('error', (error) => lost(c, error))
      c.on('end', () => lost(c))
      c.on('notification', (message: Notification) => {
        if (message.channel !== channel) return
        try {
          onNotify(message.payload ?? '')
        } catch (error) {
          log.error({ err: error, channel }, 'notification handler threw')
        }
      })
      try {
        await c.connect()
        await c.query(`LISTEN ${c.escapeIdentifier(channel)}`)
      } catch (error) {
        c.end().catch(() => {})
        throw error
      }
      if (stopped) {
        await c.end().catch(() => {})
        return
      }
      client = c
    }
    const lost = (c: pg.Client, error?: Error) => {
      if (c !== client || stopped) return
      client = undefined
      c.end().catch(() => {})
      log.warn({ error: errorText(error), channel }, 'listen connection lost; reconnecting')
      try {
        listenOptions.onLost?.()
      } catch (lostError) {
        log.error({ err: lostError, channel }, 'listen onLost handler threw')
      }
      reconnectLater()
    }
    const reconnectLater = () => {
      timer = setTimeout(() => {
        connect().then(
          () => {
            if (stopped) return
            log.info({ channel, failures }, 'listening again')
            delay = 100
            failures = 0
            listenOptions.onReconnect?.()
          },
          (error: unknown) => {
            if (stopped) return
            failures++
            log.debug({ err: error, channel, failures }, 'listen reconnect failed')
            delay = Math.min(delay * 2, 2000)
            reconnectLater()
          },
        )
      }, delay)
    }

    await connect()
    const unlisten = async (): Promise<void> => {
      if (stopped) return
      stopped = true
      listeners.delete(unlisten)
      clearTimeout(timer)
      const c = client
      client = undefined
      await c?.end().catch(() => {})
    }
    listeners.add(unlisten)
    return unlisten
  }

  return {
    pool,
    scope: pool,
    query: <R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]) => pool.query<R>(text, values),
    tx,
    listen,
    close: () =>
      (closing ??= (async () => {
        await Promise.all([...listeners].map((unlisten) => unlisten()))
        await pool.end()
      })()),
  }
}

function release(client: PoolClient, broken: unknown): void {
  // Passing an error makes the pool destroy the connection instead of reusing it.
  client.release(broken === undefined ? undefined : broken instanceof Error ? broken : true)
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      done()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      fail(signal?.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Connection errors carry the whole pg client in their properties; a log line needs the message and code. */
function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' ? `${error.message} (${code})` : error.message
}
