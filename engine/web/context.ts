/** What every route module gets from the server: the store, the clock, shared services and settings. */
import type { Logger } from 'pino'
import type { Db } from '../store/db.ts'
import type { Masker } from '../secrets/mask.ts'
import type { CredentialWatch } from './auth/credential-watch.ts'
import type { OnlineRowCache } from '../data/online-cache.ts'
import type { Access } from './auth/authenticate.ts'
import type { LogFeed } from './log-feed.ts'
import type { StateFeed } from './state-feed.ts'

export interface WebContext {
  db: Db
  log: Logger
  now: () => Date
  logFeed: LogFeed
  stateFeed: StateFeed
  /** Masks the secret values the web process knows (see secret-masking.ts). */
  masker: () => Masker
  /** Aborted when the server closes: log streams end. */
  closing: AbortSignal
  sessionTtlMs: number
  /** Set the cookie's Secure flag even on plain-HTTP requests (the public URL is https behind a proxy). */
  secureCookies: boolean
  login: LoginLimits
  /** Re-checks the credentials of open streams (revoked, expired, disabled: the stream ends). */
  credentials: CredentialWatch
  /** Who may read /metrics (cairn.yaml web.metrics_auth). */
  metricsAccess: Access
  /** Fallback poll of a log stream when no notification arrives. */
  followPollMs: number
  healthTimeoutMs: number
  /** Online rows read recently (web.online_cache_rows of cairn.yaml bounds it). */
  onlineRows: OnlineRowCache
}

/** Login throttling (see auth/login-throttle.ts and docs/web.md). */
export interface LoginLimits {
  /** Attempts per client address, whatever the user name, in each window. @default 10 */
  perIp: number
  /** @default 60000 */
  windowMs: number
  /** Failures of one user name from one address before that pair backs off. @default 5 */
  perUser: number
  /** Failures of one user name from all addresses before addresses the user never logged in from back off. @default 50 */
  perUserAnywhere: number
  /** First back-off delay; it doubles with each further failure. @default 1000 */
  backoffMs: number
  /** The longest back-off delay. @default 900000 (15 minutes) */
  maxBackoffMs: number
}
