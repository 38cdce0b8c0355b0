import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compileParam, resolveRunParams } from '../../engine/dag/run-params.ts'

test('a catastrophic-backtracking pattern checks a long value in linear time', () => {
  // Native RegExp needs about 2^n steps for `^(a+)+$` on n a's followed by a mismatch (26: 10 s here).
  const definitions = { p: { type: 'string', pattern: '^(a+)+$' } }
  let started = performance.now()
  const refused = resolveRunParams(definitions, { p: `${'a'.repeat(26)}!` })
  let elapsed = performance.now() - started
  assert.ok(elapsed < 1000, `26 characters took ${elapsed.toFixed(0)} ms`)
  assert.equal(refused.ok, false)
  assert.match(refused.ok ? '' : refused.errors.join(), /must match pattern/)
  started = performance.now()
  const longer = resolveRunParams(definitions, { p: `${'a'.repeat(100_000)}!` })
  elapsed = performance.now() - started
  assert.ok(elapsed < 1000, `100,000 characters took ${elapsed.toFixed(0)} ms`)
  assert.equal(longer.ok, false)
  const accepted = resolveRunParams(definitions, { p: 'aaaa' })
  assert.deepEqual(accepted.ok ? { ...accepted.values } : accepted.errors, { p: 'aaaa' })
})

test('patterns keep their JavaScript meaning: classes, escapes, named groups, unicode, case flags inside', () => {
  const cases: [string, string, boolean][] = [
    ['^\\d{4}-\\d{2}$', '2026-03', true],
    ['^\\d{4}-\\d{2}$', '2026-3', false],
    ['^(?<year>\\d{4})$', '2026', true],
    ['^caf\\u00e9$', 'café', true],
    ['^\\p{L}+$', 'ünïcødé', true],
    ['^[^]$', '\n', true],
    ['^a.c$', 'a\nc', false],
    ['^s3://[a-z0-9.-]+/', 's3://bucket/key', true],
    ['ab', 'xaby', true],
  ]
  for (const [pattern, value, matches] of cases) {
    const validate = compileParam({ type: 'string', pattern })
    assert.equal(typeof validate, 'function', `${pattern}: ${JSON.stringify(validate)}`)
    if (typeof validate !== 'function') continue
    assert.equal(validate(value), matches, `${pattern} on ${JSON.stringify(value)}`)
  }
})

test('backreferences and lookaround are refused with UNSUPPORTED_PATTERN; a broken pattern stays INVALID_PARAM_DEFINITION', () => {
  for (const pattern of ['^(a)\\1$', '^(?!tmp)', '(?=x)x', '(?<=\\$)1', '(?<!x)y']) {
    const problem = compileParam({ type: 'string', pattern })
    assert.notEqual(typeof problem, 'function', pattern)
    if (typeof problem === 'function') continue
    assert.equal(problem.code, 'UNSUPPORTED_PATTERN', pattern)
    assert.match(problem.message, /linear time/)
    assert.ok(problem.message.includes(JSON.stringify(pattern)), problem.message)
  }
  const nested = compileParam({ type: 'object', patternProperties: { '^(?!x)': { type: 'string' } } } as Record<string, unknown>)
  assert.equal(typeof nested === 'function' ? 'compiled' : nested.code, 'UNSUPPORTED_PATTERN')
  const broken = compileParam({ type: 'string', pattern: '[unclosed' })
  assert.equal(typeof broken === 'function' ? 'compiled' : broken.code, 'INVALID_PARAM_DEFINITION')
  const trigger = resolveRunParams({ p: { type: 'string', pattern: '^(a)\\1$' } }, { p: 'aa' })
  assert.equal(trigger.ok, false)
  assert.match(trigger.ok ? '' : trigger.errors.join(), /parameter "p" has an invalid definition: pattern .* cannot run in linear time/)
})
