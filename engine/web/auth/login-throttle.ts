/**
 * Login throttling that slows guessing without letting a stranger lock a user out (docs/web.md).
 *
 * Three limits, each bounded in time:
 * - per client address, whatever the name: `perIp` attempts a window (@fastify/rate-limit, session.ts);
 * - per (user name, address): after `perUser` failures, each next attempt from that address for that
 *   name waits `backoffMs`, doubling with every further failure up to `maxBackoffMs`. A stranger's
 *   failures therefore slow only the stranger's own address;
 * - per user name from every address: after `perUserAnywhere` failures (a guesser spread over many
 *   addresses), addresses the user has not logged in from in the last 30 days back off the same way.
 *   Addresses the user did log in from are never slowed by others' failures.
 * An attempt refused by a back-off is not checked and not counted, so hammering does not lengthen it;
 * a success clears its (user, address) failures. Failures are forgotten an hour after the last one.
 *
 * Each attempt is counted as a failure before the password is checked (and taken back on success), in
 * one transaction holding the rows' locks: parallel requests cannot slip past a limit together.
 */
import type { Db } from '../../store/db.ts'
import type { LoginLimits } from '../context.ts'

/** The row holding a user name's failures from every address. */
const ANYWHERE = '*'
const KNOWN_ADDRESS_DAYS = 30
const FORGET_AFTER_MS = 3_600_000

export interface ThrottleRow {
  failures: number
  lastFailureAt: Date | null
  lastSuccessAt: Date | null
}

export type ThrottleDecision = { allowed: true } | { allowed: false; retryAfterMs: number }

/** Failures that still count at `now` (forgotten an hour after the last one, or after two of the longest back-offs). */
export function countedFailures(row: ThrottleRow | undefined, now: Date, limits: LoginLimits): number {
  if (!row?.lastFailureAt) return 0
  return now.getTime() - row.lastFailureAt.getTime() >= forgetAfterMs(limits) ? 0 : row.failures
}

/** How long after the last failure the next attempt must wait, given the failures and the free allowance. */
export function backoffDelayMs(failures: number, free: number, limits: LoginLimits): number {
  if (failures < free) return 0
  return Math.min(limits.backoffMs * 2 ** Math.min(failures - free, 40), limits.maxBackoffMs)
}

/** Whether an attempt for a (user, address) may be checked now; pure, so the rules are testable alone. */
export function decideAttempt(pair: ThrottleRow | undefined, anywhere: ThrottleRow | undefined, now: Date, limits: LoginLimits): ThrottleDecision {
  const waits: number[] = [waitMs(pair, limits.perUser, now, limits)]
  const known = pair?.lastSuccessAt != null && now.getTime() - pair.lastSuccessAt.getTime() < KNOWN_ADDRESS_DAYS * 86_400_000
  if (!known) waits.push(waitMs(anywhere, limits.perUserAnywhere, now, limits))
  const retryAfterMs = Math.max(...waits)
  return retryAfterMs > 0 ? { allowed: false, retryAfterMs } : { allowed: true }
}

function waitMs(row: ThrottleRow | undefined, free: number, now: Date, limits: LoginLimits): number {
  const failures = countedFailures(row, now, limits)
  const delay = backoffDelayMs(failures, free, limits)
  if (delay === 0 || !row?.lastFailureAt) return 0
  return Math.max(0, row.lastFailureAt.getTime() + delay - now.getTime())
}

function forgetAfterMs(limits: LoginLimits): number {
  return Math.max(FORGET_AFTER_MS, 2 * limits.maxBackoffMs)
}

/** The key a user name is throttled under: names differing only in case share their limits. */
export function throttleName(username: string): string {
  return username.toLowerCase()
}

/**
 * Asks to check one login attempt. When allowed, the attempt is already counted as a failure;
 * call `loginSucceeded` when the password was right.
 */
export async function reserveLoginAttempt(db: Db, username: string, address: string, limits: LoginLimits): Promise<ThrottleDecision> {
  const name = throttleName(username)
  const decision = await db.tx(async (q) => {
    await q.query(`INSERT INTO cairn.login_throttle (username, address) VALUES ($1, $2), ($1, '${ANYWHERE}') ON CONFLICT DO NOTHING`, [name, address])
    const { rows } = await q.query<{ address: string; failures: number; last_failure_at: Date | null; last_success_at: Date | null; now: Date }>(
      `SELECT address, failures, last_failure_at, last_success_at, now() AS now FROM cairn.login_throttle
       WHERE username = $1 AND address IN ($2, '${ANYWHERE}') ORDER BY address FOR UPDATE`,
      [name, address],
    )
    const row = (which: string): ThrottleRow | undefined => {
      const r = rows.find((x) => x.address === which)
      return r ? { failures: r.failures, lastFailureAt: r.last_failure_at, lastSuccessAt: r.last_success_at } : undefined
    }
    const now = rows[0]!.now
    const verdict = decideAttempt(row(address), address === ANYWHERE ? undefined : row(ANYWHERE), now, limits)
    if (!verdict.allowed) return verdict
    await q.query(
      `UPDATE cairn.login_throttle SET
         failures = CASE WHEN last_failure_at IS NULL OR last_failure_at <= now() - $3 * interval '1 millisecond' THEN 1 ELSE failures + 1 END,
         last_failure_at = now()
       WHERE username = $1 AND address IN ($2, '${ANYWHERE}')`,
      [name, address, forgetAfterMs(limits)],
    )
    return verdict
  })
  await sweep(db, limits)
  return decision
}

/** The attempt reserved for (user, address) was right: clear that address's failures and remember it as the user's. */
export async function loginSucceeded(db: Db, username: string, address: string): Promise<void> {
  await db.query(
    `UPDATE cairn.login_throttle SET
       failures = CASE WHEN address = '${ANYWHERE}' THEN greatest(failures - 1, 0) ELSE 0 END,
       last_success_at = CASE WHEN address = '${ANYWHERE}' THEN last_success_at ELSE now() END
     WHERE username = $1 AND address IN ($2, '${ANYWHERE}')`,
    [throttleName(username), address],
  )
}

/** Deletes rows nobody needs any more (failures forgotten, no recent success), a batch at a time. */
async function sweep(db: Db, limits: LoginLimits): Promise<void> {
  await db.query(
    `DELETE FROM cairn.login_throttle WHERE (username, address) IN (
       SELECT username, address FROM cairn.login_throttle
       WHERE last_failure_at < now() - $1 * interval '1 millisecond'
         AND (last_success_at IS NULL OR last_success_at < now() - interval '${KNOWN_ADDRESS_DAYS} days')
       LIMIT 100)`,
    [forgetAfterMs(limits)],
  )
}
