/**
 * The value type evaluate.drift gives an online feature's column: numbers for the numeric aggregates,
 * the source column's type for min, max, first and last (timestamps and dates as text), and without a
 * known source type what the values themselves are.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { onlineFeatureType } from '../../engine/data/feature-store.ts'
import type { FeatureSpec } from '../../engine/data/feature-definition.ts'

const spec = (agg: FeatureSpec['agg'], column: string | null = 'x'): FeatureSpec => ({ name: 'f', agg, column, window_ms: null })

test('numeric aggregates are numbers whatever the source column', () => {
  for (const agg of ['sum', 'count', 'avg', 'count_distinct', 'stddev'] as const) assert.equal(onlineFeatureType(spec(agg), 'string', ['a']), 'number', agg)
  assert.equal(onlineFeatureType(spec('count', null), undefined, []), 'number')
})

test('min, max, first and last take the source column type', () => {
  assert.equal(onlineFeatureType(spec('last'), 'integer', []), 'number')
  assert.equal(onlineFeatureType(spec('max'), 'number', []), 'number')
  assert.equal(onlineFeatureType(spec('first'), 'boolean', [true]), 'boolean')
  assert.equal(onlineFeatureType(spec('min'), 'string', [1]), 'string')
  assert.equal(onlineFeatureType(spec('max'), 'timestamp', ['2026-01-01T00:00:00.000Z']), 'string')
  assert.equal(onlineFeatureType(spec('last'), 'date', ['2026-01-01']), 'string')
})

test('without a source type, the values decide; nothing to go by is text', () => {
  assert.equal(onlineFeatureType(spec('last'), undefined, [1, null, 2.5]), 'number')
  assert.equal(onlineFeatureType(spec('last'), undefined, [true, false, undefined]), 'boolean')
  assert.equal(onlineFeatureType(spec('last'), undefined, [1, 'a']), 'string')
  assert.equal(onlineFeatureType(spec('last'), undefined, [null]), 'string')
})
