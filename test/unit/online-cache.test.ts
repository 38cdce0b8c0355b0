/** The web process's caches of online rows, view definitions and verified tokens: bounds, eviction, invalidation, the race with a change, a dead feed, and one database read for many askers. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createOnlineRowCache } from '../../engine/data/online-cache.ts'
import { createOnlineStore } from '../../engine/data/online-store.ts'
import type { Db } from '../../engine/store/db.ts'
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

test('token checks: concurrent misses share one database check, a token in use is re-checked in the background past half its ttl, and a background check that finds it gone drops it', async () => {
  let now = 10_000
  const token: TokenRow = { tokenId: 1, name: 't', role: 'viewer', createdAt: new Date(0), expiresAt: null, owner: null }
  const cache = createTokenCache({ ttlMs: 2000, isLive: () => true, now: () => now })
  let checks = 0
  let answer: TokenRow | undefined = token
  // Checks wait until release() answers every one still waiting.
  let waiting: (() => void)[] = []
  const release = () => {
    for (const answerNow of waiting.splice(0)) answerNow()
  }
  const check = () => {
    checks++
    return new Promise<TokenRow | undefined>((resolve) => waiting.push(() => resolve(answer)))
  }
  const asked = Array.from({ length: 50 }, () => cache.resolve('k', check))
  assert.equal(checks, 1, '50 requests at once, one check')
  assert.ok(asked.every((a) => a instanceof Promise))
  release()
  assert.deepEqual(await Promise.all(asked), asked.map(() => token))
  assert.equal(cache.resolve('k', check), token, 'then answered synchronously from memory')
  assert.equal(checks, 1)

  now += 999
  assert.equal(cache.resolve('k', check), token)
  assert.equal(checks, 1, 'not re-checked before half the ttl')
  now += 1
  assert.equal(cache.resolve('k', check), token, 'past half the ttl: still answered at once...')
  assert.equal(checks, 2, '...while it is checked again in the background')
  assert.equal(cache.resolve('k', check), token)
  assert.equal(checks, 2, 'one background check at a time')
  now += 500
  release()
  await new Promise((r) => setImmediate(r))
  // The background check began at 11,000: the entry now counts from then.
  now = 12_999
  assert.equal(cache.get('k'), token)
  now = 13_000
  assert.equal(cache.get('k'), undefined, 'an entry never answers ttlMs after the check that stored it began')

  // A token revoked without a notification reaching this process: the background check drops it.
  const fresh = cache.resolve('k', check)
  release()
  assert.equal(await fresh, token)
  now += 1000
  answer = undefined
  assert.equal(cache.resolve('k', check), token)
  release()
  await new Promise((r) => setImmediate(r))
  const after = cache.resolve('k', check)
  assert.ok(after instanceof Promise, 'gone from memory at once')
  release()
  assert.equal(await after, undefined)

  // A check that started before a change is not shared with requests that arrive after it.
  answer = token
  const before = cache.resolve('k', check)
  cache.clear()
  const later = cache.resolve('k', check)
  assert.notEqual(before, later)
  assert.equal(waiting.length, 2)
  release()
  await Promise.all([before, later])

  const off = createTokenCache({ ttlMs: 0, isLive: () => true })
  let offChecks = 0
  await Promise.all(Array.from({ length: 3 }, () => off.resolve('k', async () => (offChecks++, token))))
  assert.equal(offChecks, 3, 'with the cache off every request checks')
})

test('online reads: lookups share one read of a missing definition, a definition in use is read again in the background, and a change is seen within definitionCacheMs', async () => {
  let definitionReads = 0
  let rowReads = 0
  let ttl: number | null = null
  let gate: Promise<void> = Promise.resolve()
  const db = {
    async query(text: string, values: unknown[]) {
      if (text.includes('cairn.feature_view v')) {
        definitionReads++
        await gate
        return { rows: [{ version: 1, removed: false, definition: { entity: ['user_id'], features: [{ name: 'total' }], ttl_ms: ttl } }] }
      }
      rowReads++
      const keys = (Array.isArray(values[1]) ? values[1] : [values[1]]) as string[]
      return { rows: keys.map((k) => ({ entity_key: k, entity: { user_id: JSON.parse(k)[0] }, features: { total: 5 }, feature_timestamp: new Date('2026-01-01T00:00:00Z'), definition_version: 1 })) }
    },
  } as unknown as Db
  const rowCache = createOnlineRowCache({ isLive: () => true })
  const store = createOnlineStore(db, { rowCache, definitionCacheMs: 200, now: () => new Date('2026-01-01T00:00:10Z') })
  const reads = await Promise.all(Array.from({ length: 50 }, (_, i) => store.read('v', [{ user_id: `u${i % 5}` }])))
  assert.equal(definitionReads, 1, '50 lookups at once read the definition once')
  assert.ok(reads.every((r) => r.ok && r.values[0]!.found && r.values[0]!.features.total === 5))

  const again = store.read('v', [{ user_id: 'u1' }])
  assert.ok(!(again instanceof Promise), 'a definition and row in memory: answered synchronously')
  assert.deepEqual(again, reads[1])
  assert.equal(rowReads > 0 && rowReads <= 50, true)

  // Past half the definition's time: answered at once, with one read in the background.
  let release!: () => void
  gate = new Promise((r) => (release = r))
  await new Promise((r) => setTimeout(r, 110))
  const before = definitionReads
  for (let i = 0; i < 10; i++) assert.ok(!(store.read('v', [{ user_id: 'u1' }]) instanceof Promise))
  assert.equal(definitionReads, before + 1)
  ttl = 1000 // the definition changes: a ttl of one second makes every row (10 s old) expired
  release()
  gate = Promise.resolve()
  const deadline = Date.now() + 5000
  let seen = false
  while (!seen && Date.now() < deadline) {
    const r = await store.read('v', [{ user_id: 'u1' }])
    seen = r.ok && r.values[0]!.expired
    if (!seen) await new Promise((res) => setTimeout(res, 20))
  }
  assert.ok(seen, 'the changed definition is applied')
  const expired = await store.read('v', [{ user_id: 'u2' }])
  assert.ok(expired.ok && expired.values[0]!.expired && expired.values[0]!.features.total === null)
})

test('an answer made from a cached row is reused while the definition read again is unchanged, and remade when it changes', async () => {
  let features = [{ name: 'total' }]
  const db = {
    async query(text: string, values: unknown[]) {
      if (text.includes('cairn.feature_view v')) return { rows: [{ version: 1, removed: false, definition: { entity: ['user_id'], features, ttl_ms: null } }] }
      const key = values[1] as string
      return { rows: [{ entity_key: key, entity: { user_id: JSON.parse(key)[0] }, features: { total: 5, extra: 1 }, feature_timestamp: new Date('2026-01-01T00:00:00Z'), definition_version: 1 }] }
    },
  } as unknown as Db
  const store = createOnlineStore(db, { rowCache: createOnlineRowCache({ isLive: () => true }), definitionCacheMs: 40 })
  const first = await store.read('v', [{ user_id: 'u1' }])
  assert.ok(first.ok)
  // Well past the definition's time: it has been read again (unchanged) at least once.
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 30))
    await store.read('v', [{ user_id: 'u1' }])
  }
  const later = await store.read('v', [{ user_id: 'u1' }])
  assert.ok(later.ok)
  assert.equal(later.values[0], first.values[0], 'the same answer object, not one rebuilt per definition read')
  assert.ok(Object.isFrozen(later.values[0]))
  // Past the definition's time with no lookup meanwhile: the next lookup waits for the definition's read
  // itself, and still gets the answer kept (the read hands back the kept, unchanged definition).
  await new Promise((r) => setTimeout(r, 80))
  const waited = await store.read('v', [{ user_id: 'u1' }])
  assert.ok(waited.ok)
  assert.equal(waited.values[0], first.values[0], 'a lookup that waited for the definition gets the kept answer')
  features = [{ name: 'total' }, { name: 'extra' }]
  await waitUntil(async () => {
    const r = await store.read('v', [{ user_id: 'u1' }])
    return r.ok && 'extra' in r.values[0]!.features
  })
  const changed = await store.read('v', [{ user_id: 'u1' }])
  assert.ok(changed.ok)
  assert.deepEqual(changed.values[0]!.features, { total: 5, extra: 1 })
})

async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}
