import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { ERROR_CODES } from '../../engine/errors.ts'

test('every error code is documented in docs/errors.md', () => {
  const docs = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')
  const missing = Object.keys(ERROR_CODES).filter((code) => !docs.includes(`\`${code}\``))
  assert.deepEqual(missing, [])
})

test('docs/errors.md lists no code that does not exist', () => {
  const docs = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')
  const listed = [...docs.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]!)
  assert.deepEqual(listed.filter((code) => !Object.hasOwn(ERROR_CODES, code)), [])
})
