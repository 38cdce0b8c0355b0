/** The traffic split: shares, sticky route keys, and keys staying on the canary as its share grows. */
import test from 'node:test'
import assert from 'node:assert/strict'
import { chooseVersion, routePoint } from '../../engine/serve/traffic.ts'
import { prng } from '../../engine/seeded-random.ts'

test('without a canary everything goes to production; with one, about its share', () => {
  assert.equal(chooseVersion({ production: 3, canary: undefined, canaryShare: 0.5 }, undefined), 3)
  assert.equal(chooseVersion({ production: undefined, canary: 4, canaryShare: 0.1 }, undefined), 4)
  assert.equal(chooseVersion({ production: undefined, canary: undefined, canaryShare: 0 }, undefined), undefined)
  assert.equal(chooseVersion({ production: 3, canary: 4, canaryShare: 0 }, 'k'), 3)
  const random = prng(1)
  let canary = 0
  for (let i = 0; i < 20_000; i++) if (chooseVersion({ production: 3, canary: 4, canaryShare: 0.1 }, undefined, random) === 4) canary++
  assert.ok(Math.abs(canary / 20_000 - 0.1) < 0.01, `${canary}`)
})

test('route keys are sticky, spread evenly, and stay on the canary as the share grows', () => {
  const keys = Array.from({ length: 20_000 }, (_, i) => `user-${i}`)
  const at = (share: number) => new Set(keys.filter((k) => chooseVersion({ production: 1, canary: 2, canaryShare: share }, k) === 2))
  const ten = at(0.1)
  const fifty = at(0.5)
  assert.ok(Math.abs(ten.size / keys.length - 0.1) < 0.01, `${ten.size}`)
  assert.ok(Math.abs(fifty.size / keys.length - 0.5) < 0.015, `${fifty.size}`)
  for (const k of ten) assert.ok(fifty.has(k), `${k} left the canary when its share grew`)
  for (const k of keys.slice(0, 100)) assert.equal(routePoint(k), routePoint(k))
})
