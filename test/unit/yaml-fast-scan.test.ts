/**
 * The fast path's one-pass scanner (needsCarefulParser) decides exactly what the regular expressions
 * and separate scans it replaced decided; those are kept here as the reference.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { needsCarefulParser } from '../../engine/dag/yaml-fast.ts'
import { LIMITS, findDeepFlowNesting, findForbiddenCharacter } from '../../engine/dag/limits.ts'
import { validFixtureTexts } from '../fuzz/validate-property.ts'

const UNUSUAL = /\t|(?:^|[\s[{,])[&*][\w-]|^(?:---|\.\.\.|%)|(?:^|\s)\?\s|<<|[[{,]\s*(?:#.*)?$|\d[eE][-+]?\d/m

function hasMultilineQuote(text: string): boolean {
  let double = 0
  let single = 0
  let flow = 0
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    if (ch === 0x0a) {
      if (double % 2 === 1 || single % 2 === 1 || flow !== 0) return true
      double = 0
      single = 0
    } else if (ch === 0x22 && text.charCodeAt(i - 1) !== 0x5c) double++
    else if (ch === 0x27) single++
    else if (double % 2 === 0 && single % 2 === 0) {
      if (ch === 0x5b || ch === 0x7b) flow++
      else if (ch === 0x5d || ch === 0x7d) flow--
    }
  }
  return double % 2 === 1 || single % 2 === 1 || flow !== 0
}

function reference(text: string): boolean {
  if (text.charCodeAt(0) === 0xfeff) return true
  if (UNUSUAL.test(text) || hasMultilineQuote(text)) return true
  return findForbiddenCharacter(text) !== undefined || findDeepFlowNesting(text, LIMITS.maxDepth) !== undefined
}

const PIECES = [
  'a', 'b', '1', '2', 'e', 'E', '+', '-', '.', '_', ' ', '  ', '\n', '\r', '\r\n', '\t', '\u2028', '\u00a0', '\ufeff', '\u0000', '\u007f', '\ufffe',
  ':', ': ', '- ', '[', ']', '{', '}', ',', ', ', '&', '*', '&a', '*a', '?', '? ', '<', '<<', '#', ' #', '%', '---', '...', '"', "'", '\\', '\\"', '1e5', '2E-3',
  'key: value\n', 'list: [a, b]\n', '  nested: { x: 1 }\n', 'text: "quoted"\n', "it's\n", '|\n  block\n',
]
const texts = fc.array(fc.constantFrom(...PIECES), { maxLength: 40 }).map((parts) => parts.join(''))

test('the scanner agrees with the reference on random YAML-ish texts', () => {
  fc.assert(
    fc.property(texts, (text) => {
      assert.equal(needsCarefulParser(text), reference(text), JSON.stringify(text))
    }),
    { numRuns: 20_000 },
  )
})

test('the scanner agrees with the reference on the fixtures and deep nestings', () => {
  for (const text of validFixtureTexts()) assert.equal(needsCarefulParser(text), reference(text))
  const deep = (n: number): string => `x: ${'['.repeat(n)}1${']'.repeat(n)}\n`
  for (const n of [LIMITS.maxDepth - 1, LIMITS.maxDepth, LIMITS.maxDepth + 1, 500]) assert.equal(needsCarefulParser(deep(n)), reference(deep(n)), String(n))
  assert.equal(needsCarefulParser(deep(LIMITS.maxDepth + 1)), true)
  const quotedBrackets = `x: "${'['.repeat(100)}"\n`
  assert.equal(needsCarefulParser(quotedBrackets), reference(quotedBrackets))
})
