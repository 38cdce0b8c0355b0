/**
 * The notification channel of the web processes' in-memory caches (engine/web/cache-feed.ts): the
 * verified bearer tokens and the online feature rows. A write that makes a cached value wrong sends
 * a NOTIFY from inside its own statement or transaction, so it is delivered when, and only when, the
 * write commits, to every web process listening on the database.
 *
 * Payloads: `credentials` (a token was revoked, a user disabled or enabled) and `online<TAB>VIEW`
 * (online rows of VIEW were written).
 */
export const CACHE_CHANNEL = 'cairn_cache'

export const CREDENTIALS_PAYLOAD = 'credentials'
const ONLINE_PREFIX = 'online\t'

export type CacheNotice = { kind: 'credentials' } | { kind: 'online'; view: string } | { kind: 'unknown' }

export function onlinePayload(view: string): string {
  return `${ONLINE_PREFIX}${view}`
}

export function parseCacheNotice(payload: string): CacheNotice {
  if (payload === CREDENTIALS_PAYLOAD) return { kind: 'credentials' }
  if (payload.startsWith(ONLINE_PREFIX)) return { kind: 'online', view: payload.slice(ONLINE_PREFIX.length) }
  return { kind: 'unknown' }
}

/** An SQL expression that queues the credentials notice (sent at commit). */
export const NOTIFY_CREDENTIALS_SQL = `pg_notify('${CACHE_CHANNEL}', '${CREDENTIALS_PAYLOAD}')`

/**
 * Credential changes made by this process, for caches in the same process: they drop what they hold
 * at once, without waiting for the NOTIFY to come back from the database.
 */
const localCredentialListeners = new Set<() => void>()

export function onLocalCredentialChange(fn: () => void): () => void {
  localCredentialListeners.add(fn)
  return () => localCredentialListeners.delete(fn)
}

export function localCredentialChange(): void {
  for (const fn of localCredentialListeners) fn()
}
