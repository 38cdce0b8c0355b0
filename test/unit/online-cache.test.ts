/** The web process's caches of online rows and verified tokens: bounds, eviction, invalidation, the race with a change, and a dead feed. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createOnlineRowCache } from '../../engine/data/online-cache.ts'
import type { OnlineRow } from '../../engine/store/feature-online.ts'
import { createTokenCache } from '../../engine/web/auth/token-cache.ts'
import type { TokenRow } from '../../engine/web/auth/tokens.ts'

const row = (key: string, total: number): OnlineRow => ({ key, entity: { user_id: key }, features: { total }, featureTimestamp: new Date(0), definitionVersion: 1 })

test('the online cache keeps at most maxRows rows, and a row read since it was last passed over gets a second chance', () => {
  const cache = createOnlineRowCache({ maxRows: 3, isLive: () => true })
  const put = (key: string) => cache.set('v', key, row(key, 1), cache.generation('v'))
  for (const key of ['a', 'b', 'c']) put(key)
  assert.ok(cache.get('v', 'a'))
  put('d')
  assert.equal(cache.size, 3)
  assert.ok(cache.get('v', 'a'), 'a was read, so b (the oldest unread) went')
  assert.equal(cache.get('v', 'b'), undefined)
  for (let i = 0; i < 100; i++) put(`x${i}`)
  assert.equal(cache.size, 3)
  assert.equal(createOnlineRowCache({ maxRows: 0, isLive: () => true }).size, 0)
  const off = createOnlineRowCache({ maxRows: 0, isLive: () => true })
  off.set('v', 'a', row('a', 1), off.generation('v'))
  assert.equal(off.get('v', 'a'), undefined, 'maxRows 0 caches nothing')
})

test('the online cache remembers absent rows, forgets one view or all, and never stores a read that raced an invalidation', () => {
  const cache = createOnlineRowCache({ isLive: () => true })
  cache.set('v', 'a', row('a', 1), cache.generation('v'))
  cache.set('v', 'gone', null, cache.generation('v'))
  cache.set('w', 'a', row('a', 2), cache.generation('w'))
  assert.equal(cache.get('v', 'gone'), null, 'known absent')
  assert.equal(cache.get('v', 'nope'), undefined, 'not known')

  const startedUnder = cache.generation('v')
  cache.invalidate('v')
  assert.equal(cache.get('v', 'a'), undefined)
  assert.equal((cache.get('w', 'a') as OnlineRow).features.total, 2, 'other views keep their rows')
  cache.set('v', 'a', row('a', 1), startedUnder)
  assert.equal(cache.get('v', 'a'), undefined, 'a read that started before the invalidation is not cached')
  cache.set('v', 'a', row('a', 3), cache.generation('v'))
  assert.equal((cache.get('v', 'a') as OnlineRow).features.total, 3)

  const beforeReset = cache.generation('w')
  cache.invalidate()
  assert.equal(cache.size, 0)
  cache.set('w', 'a', row('a', 2), beforeReset)
  assert.equal(cache.get('w', 'a'), undefined)
})

test('the online cache answers nothing while its feed is down, and nothing older than maxAgeMs', () => {
  let live = true
  let now = 0
  const cache = createOnlineRowCache({ isLive: () => live, maxAgeMs: 1000, now: () => now })
  cache.set('v', 'a', row('a', 1), cache.generation('v'))
  live = false
  assert.equal(cache.get('v', 'a'), undefined)
  cache.set('v', 'b', row('b', 1), cache.generation('v'))
  live = true
  assert.equal(cache.get('v', 'b'), undefined, 'nothing was stored while down')
  now = 999
  assert.ok(cache.get('v', 'a'))
  now = 1000
  assert.equal(cache.get('v', 'a'), undefined)
})

test('the token cache trusts a verified token for ttlMs, never past its expiry, not while its feed is down, and not after a change', () => {
  let now = 10_000
  let live = true
  const token = (expiresAt: number | null): TokenRow => ({ tokenId: 1, name: 't', role: 'viewer', createdAt: new Date(0), expiresAt: expiresAt === null ? null : new Date(expiresAt), owner: null })
  const cache = createTokenCache({ ttlMs: 2000, isLive: () => live, now: () => now })
  cache.set('k', token(null), cache.generation())
  assert.ok(cache.get('k'))
  now += 2000
  assert.equal(cache.get('k'), undefined, 'older than ttlMs')

  cache.set('k', token(now + 500), cache.generation())
  now += 499
  assert.ok(cache.get('k'))
  now += 1
  assert.equal(cache.get('k'), undefined, 'expired')

  cache.set('k', token(null), cache.generation())
  live = false
  assert.equal(cache.get('k'), undefined, 'feed down')
  live = true
  const startedUnder = cache.generation()
  cache.clear()
  assert.equal(cache.get('k'), undefined)
  cache.set('k', token(null), startedUnder)
  assert.equal(cache.get('k'), undefined, 'a check that raced a change is not cached')

  const off = createTokenCache({ ttlMs: 0, isLive: () => true })
  off.set('k', token(null), off.generation())
  assert.equal(off.get('k'), undefined)
  const small = createTokenCache({ maxEntries: 2, isLive: () => true })
  for (const k of ['a', 'b', 'c']) small.set(k, token(null), small.generation())
  assert.equal(small.size, 2)
})
