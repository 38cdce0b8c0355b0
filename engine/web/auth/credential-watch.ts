/**
 * Open streams outlive the request that authenticated them: a log or event stream may stay open for
 * hours. The watch re-checks the credential of every open stream every `intervalMs` (one query for
 * all token streams, one for all session streams) and tells a stream when its token was revoked or
 * expired, its session ended or expired, or its user (or the token's owner) was disabled.
 *
 * A credential change announced by the database (cache-feed.ts) triggers a check at once.
 *
 * A check that fails because the database is unreachable ends nothing: the streams keep going and
 * the next check decides.
 */
import type { Logger } from 'pino'
import type { Queryable } from '../../store/queryable.ts'
import type { Principal } from './authenticate.ts'
import { sha256 } from './secret-ids.ts'
import { liveTokenIds } from './tokens.ts'

export interface CredentialWatch {
  /** Calls `onInvalid` once when the principal's credential stops being valid; returns a function that stops watching. */
  watch(principal: Principal, onInvalid: () => void): () => void
  /** Checks now (a credential change was announced), not at the next interval. */
  checkNow(): void
  close(): void
}

interface Watcher {
  principal: Principal
  onInvalid: () => void
}

export function createCredentialWatch(q: Queryable, log: Logger, intervalMs: number): CredentialWatch {
  const watchers = new Set<Watcher>()
  let timer: NodeJS.Timeout | undefined
  let checking = false

  let again = false
  async function check(): Promise<void> {
    if (watchers.size === 0) return
    if (checking) {
      again = true
      return
    }
    checking = true
    try {
      const current = [...watchers]
      const tokenIds = current.flatMap((w) => (w.principal.kind === 'token' ? [w.principal.tokenId] : []))
      const sessionIds = current.flatMap((w) => (w.principal.kind === 'session' ? [w.principal.sessionId] : []))
      const [liveTokens, liveSessions] = await Promise.all([liveTokenIds(q, tokenIds), liveSessionIds(q, sessionIds)])
      for (const w of current) {
        const live = w.principal.kind === 'token' ? liveTokens.has(w.principal.tokenId) : liveSessions.has(w.principal.sessionId)
        if (!live && watchers.delete(w)) w.onInvalid()
      }
    } catch (error) {
      log.debug({ err: error }, 'credential check failed; open streams stay open until the next one')
    } finally {
      checking = false
      if (watchers.size === 0) stopTimer()
      if (again) {
        again = false
        void check()
      }
    }
  }

  function stopTimer(): void {
    if (timer !== undefined) clearInterval(timer)
    timer = undefined
  }

  return {
    watch(principal, onInvalid) {
      const watcher: Watcher = { principal, onInvalid }
      watchers.add(watcher)
      timer ??= setInterval(() => void check(), intervalMs)
      timer.unref()
      return () => {
        watchers.delete(watcher)
        if (watchers.size === 0) stopTimer()
      }
    },
    checkNow() {
      void check()
    },
    close() {
      watchers.clear()
      stopTimer()
    },
  }
}

/** Of these session ids (the cookie values), the ones whose session is live and whose user is not disabled. */
async function liveSessionIds(q: Queryable, sessionIds: readonly string[]): Promise<Set<string>> {
  if (sessionIds.length === 0) return new Set()
  const byHash = new Map(sessionIds.map((id) => [sha256(id).toString('hex'), id]))
  const { rows } = await q.query<{ session_hash: Buffer }>(
    `SELECT s.session_hash FROM cairn.web_session s JOIN cairn.web_user u USING (username)
     WHERE s.session_hash = ANY($1::bytea[]) AND s.expires_at > now() AND NOT u.disabled`,
    [[...byHash.keys()].map((hex) => Buffer.from(hex, 'hex'))],
  )
  return new Set(rows.map((r) => byHash.get(r.session_hash.toString('hex'))!))
}
