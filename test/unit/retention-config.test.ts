import { test } from 'node:test'
import assert from 'node:assert/strict'
import { retentionSettings } from '../../engine/config/retention.ts'
import { validateSource } from '../../engine/dag/validate.ts'

const check = (yaml: string) => validateSource('cairn.yaml', new TextEncoder().encode(yaml), { kind: 'config' })

test('cairn.yaml retention: a duration, optional interval (default 1h); zero and unknown keys are refused', () => {
  assert.deepEqual(retentionSettings({ retention: { runs_older_than: '90d' } }), { runsOlderThanMs: 90 * 86_400_000, intervalMs: 3_600_000 })
  assert.deepEqual(retentionSettings({ retention: { runs_older_than: '12h', interval: '5m' } }), { runsOlderThanMs: 12 * 3_600_000, intervalMs: 300_000 })
  assert.equal(retentionSettings({}), undefined)
  assert.equal(check('retention: { runs_older_than: 90d, interval: 1h }\n').ok, true)
  const zero = check('retention: { runs_older_than: 0d }\n')
  assert.deepEqual(zero.diagnostics.map((d) => [d.code, d.path, d.line]), [['INVALID_VALUE', 'retention.runs_older_than', 1]])
  assert.equal(check('retention: { runs_older_than: 90 days }\n').ok, false)
  assert.equal(check('retention: { older_than: 90d }\n').ok, false)
})
