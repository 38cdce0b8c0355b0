import { it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { checkValidation, mutate, validFixtureTexts, validateProperty } from '../fuzz/validate-property.ts'

it('the fixtures the fuzzer starts from are valid, so mutations are what the property exercises', () => {
  const texts = validFixtureTexts()
  assert.ok(texts.length >= 16)
  for (const text of texts) assert.equal(checkValidation(text), 'ok')
})

it('mutations change the text as described', () => {
  assert.equal(mutate('abc', { kind: 'delete', at: 1, length: 1 }), 'ac')
  assert.equal(mutate('abc', { kind: 'insert', at: 4, text: '[' }), '[abc')
  assert.equal(mutate('a\nb', { kind: 'swapLines', a: 0, b: 1 }), 'b\na')
  assert.equal(mutate('k: v\nx', { kind: 'replaceValue', line: 0, value: '{{ ds }}' }), 'k: {{ ds }}\nx')
  assert.equal(mutate('    a', { kind: 'indent', line: 0, delta: -2 }), '  a')
})

it('mutated DAG files never crash the validator and every diagnostic is placed inside the file (1,000 runs)', () => {
  const outcomes = { ok: 0, error: 0 }
  // Cross-checked: a file the fast path finds valid must read the same through the careful parser.
  fc.assert(validateProperty((o) => outcomes[o]++, { crossCheck: true }), { numRuns: 1000, seed: 20260101 })
  // The mutations must actually break files, or the property would test nothing.
  assert.ok(outcomes.error > 300, `only ${outcomes.error} of 1,000 mutated files were invalid`)
})
