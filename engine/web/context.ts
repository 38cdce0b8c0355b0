/** What every route module gets from the server: the store, the clock, shared services and settings. */
import type { Logger } from 'pino'
import type { Db } from '../store/db.ts'
import type { Masker } from '../secrets/mask.ts'
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
  login: { perIp: number; perUser: number; windowMs: number }
  /** Fallback poll of a log stream when no notification arrives. */
  followPollMs: number
  healthTimeoutMs: number
}
