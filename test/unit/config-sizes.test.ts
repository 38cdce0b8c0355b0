import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseSize } from '../../engine/config/sizes.ts'
import { checkConfigSemantics } from '../../engine/config/config-semantics.ts'

test('sizes: bytes, or a number with B, KB, MB or GB in units of 1024', () => {
  assert.equal(parseSize(65536), 65536)
  assert.equal(parseSize('100B'), 100)
  assert.equal(parseSize('64KB'), 65536)
  assert.equal(parseSize('50MB'), 50 * 1024 * 1024)
  assert.equal(parseSize('1 GB'), 1024 ** 3)
  assert.throws(() => parseSize('5 parsecs'), /not a number of bytes/)
  assert.throws(() => parseSize(-1))
})

test('workers.max_log_bytes below 64KB is refused with its path', () => {
  const problems = checkConfigSemantics({ workers: { max_log_bytes: '1KB' } })
  assert.deepEqual(problems.map((p) => [p.code, p.path]), [['INVALID_VALUE', ['workers', 'max_log_bytes']]])
  assert.match(problems[0]!.message, /at least 64KB/)
  assert.deepEqual(checkConfigSemantics({ workers: { max_log_bytes: '64KB' } }), [])
  assert.deepEqual(checkConfigSemantics({ workers: { max_log_bytes: 10 * 1024 * 1024 } }), [])
})
