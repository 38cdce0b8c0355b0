import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatDuration, formatTable, formatTime, oneLine } from '../../engine/cli/table.ts'

test('formatTable pads every column but the last to its widest cell', () => {
  assert.deepEqual(formatTable(['TASK', 'STATE', 'MESSAGE'], [['extract', 'success', ''], ['t', 'failed', 'exit code 3']]), [
    'TASK     STATE    MESSAGE',
    'extract  success',
    't        failed   exit code 3',
  ])
  assert.deepEqual(formatTable(['A', 'B'], []), ['A  B'])
})

test('formatTime and formatDuration', () => {
  assert.equal(formatTime(new Date('2026-01-01T02:03:04.567Z')), '2026-01-01T02:03:04Z')
  assert.equal(formatTime(null), '-')
  const start = new Date('2026-01-01T00:00:00Z')
  const plus = (ms: number): Date => new Date(start.getTime() + ms)
  assert.equal(formatDuration(start, null), '-')
  assert.equal(formatDuration(start, plus(850)), '850ms')
  assert.equal(formatDuration(start, plus(12_340)), '12.3s')
  assert.equal(formatDuration(start, plus(245_000)), '4m05s')
  assert.equal(formatDuration(start, plus(7_380_000)), '2h03m')
})

test('oneLine flattens whitespace and cuts long text', () => {
  assert.equal(oneLine('a\n  b\tc'), 'a b c')
  assert.equal(oneLine('x'.repeat(100), 10), `${'x'.repeat(9)}…`)
  assert.equal(oneLine(null), '')
})
