/** The login back-off rules (engine/web/auth/login-throttle.ts) as a pure function of the counters and the time. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { backoffDelayMs, countedFailures, decideAttempt, throttleName } from '../../engine/web/auth/login-throttle.ts'
import type { ThrottleRow } from '../../engine/web/auth/login-throttle.ts'
import type { LoginLimits } from '../../engine/web/context.ts'

const LIMITS: LoginLimits = { perIp: 10, windowMs: 60_000, perUser: 5, perUserAnywhere: 50, backoffMs: 1000, maxBackoffMs: 900_000 }
const NOW = new Date('2026-06-01T12:00:00Z')
const ago = (ms: number): Date => new Date(NOW.getTime() - ms)
const row = (failures: number, lastFailureMsAgo: number, lastSuccessMsAgo?: number): ThrottleRow => ({
  failures,
  lastFailureAt: ago(lastFailureMsAgo),
  lastSuccessAt: lastSuccessMsAgo === undefined ? null : ago(lastSuccessMsAgo),
})

test('the delay starts after the free failures, doubles, and stops at the cap', () => {
  assert.deepEqual([0, 4, 5, 6, 7, 10, 15, 20, 1000].map((f) => backoffDelayMs(f, 5, LIMITS)), [0, 0, 1000, 2000, 4000, 32_000, 900_000, 900_000, 900_000])
})

test('an attempt waits out the delay counted from the last failure', () => {
  assert.deepEqual(decideAttempt(undefined, undefined, NOW, LIMITS), { allowed: true })
  assert.deepEqual(decideAttempt(row(4, 0), undefined, NOW, LIMITS), { allowed: true })
  assert.deepEqual(decideAttempt(row(5, 200), undefined, NOW, LIMITS), { allowed: false, retryAfterMs: 800 })
  assert.deepEqual(decideAttempt(row(5, 1000), undefined, NOW, LIMITS), { allowed: true })
  assert.deepEqual(decideAttempt(row(40, 60_000), undefined, NOW, LIMITS), { allowed: false, retryAfterMs: 840_000 }, 'never more than the cap')
  assert.deepEqual(decideAttempt(row(40, 900_000), undefined, NOW, LIMITS), { allowed: true }, 'a lock-out is bounded in time')
})

test('failures are forgotten an hour after the last one', () => {
  assert.equal(countedFailures(row(30, 3_599_999), NOW, LIMITS), 30)
  assert.equal(countedFailures(row(30, 3_600_000), NOW, LIMITS), 0)
})

test("the user's failures from every address slow only addresses the user has not logged in from lately", () => {
  const anywhere = row(50, 100)
  assert.deepEqual(decideAttempt(undefined, anywhere, NOW, LIMITS), { allowed: false, retryAfterMs: 900 }, 'a new address waits')
  assert.deepEqual(decideAttempt(row(0, 86_400_000, 86_400_000), anywhere, NOW, LIMITS), { allowed: true }, 'an address with a success yesterday does not')
  assert.deepEqual(decideAttempt(row(0, 31 * 86_400_000, 31 * 86_400_000), anywhere, NOW, LIMITS), { allowed: false, retryAfterMs: 900 }, 'a success 31 days ago no longer counts')
  assert.deepEqual(decideAttempt(row(5, 100, 86_400_000), anywhere, NOW, LIMITS), { allowed: false, retryAfterMs: 900 }, "a known address's own failures still count")
})

test('user names differing in case share their limits', () => {
  assert.equal(throttleName('Admin'), throttleName('aDMIN'))
})
