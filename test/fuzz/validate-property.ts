/**
 * The validator's fuzz property, shared by test/unit/validate-fuzz.test.ts (1,000 runs) and
 * bench/fuzz-validate.ts (10,000). Inputs are the valid DAG fixtures with random edits: characters
 * and lines deleted, inserted, duplicated or swapped, YAML-significant characters sprinkled in,
 * values replaced by random strings and templates, indentation changed. Whatever comes out, the
 * validator must not throw, and every diagnostic must be placed inside the file with a known code
 * and a message. With `crossCheck`, a file found valid must also read the same with the careful
 * parser (yaml-load.ts) as with the js-yaml fast path (the unit test and bench/fuzz-validate.ts both
 * cross-check).
 */
import { readFileSync, readdirSync } from 'node:fs'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { validateSource } from '../../engine/dag/validate.ts'
import { loadYaml } from '../../engine/dag/yaml-load.ts'
import { isErrorCode } from '../../engine/errors.ts'

const validDir = new URL('../fixtures/dags/valid/', import.meta.url)

export function validFixtureTexts(): string[] {
  return readdirSync(validDir)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => readFileSync(new URL(name, validDir), 'utf8'))
}

export type Mutation =
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'duplicate'; at: number; length: number }
  | { kind: 'swap'; a: number; b: number }
  | { kind: 'deleteLine'; line: number }
  | { kind: 'duplicateLine'; line: number }
  | { kind: 'swapLines'; a: number; b: number }
  | { kind: 'replaceValue'; line: number; value: string }
  | { kind: 'indent'; line: number; delta: number }

const SIGNIFICANT = [':', '-', '[', ']', '{', '}', '&', '*', '!', '|', '>', '#', "'", '"', '\t', '\n', ' ', ',', '?', '%', '@', '`']
const SNIPPETS = [': ', '- ', '? ', '---\n', '...\n', '%YAML 1.2\n', '{{', '}}', '{%', '%}', '&a ', '*a', '!!js/function ', '!custom ', '<<: ', '\n  ', '\r\n', '\u0000', '\ufeff', '__proto__: ']

const identifier = fc.constantFrom('dag', 'run', 'task', 'ds', 'ds_nodash', 'params', 'tasks', 'secrets', 'outputs', 'id', 'attempt', 'x', 'train', 'min_auc', '__proto__', 'constructor')
const template = fc.oneof(
  fc.array(identifier, { minLength: 1, maxLength: 5 }).map((path) => `{{ ${path.join('.')} }}`),
  fc.constantFrom('{{ }}', '{{', '}}', '{{ ds | bogus }}', '{{ ds | date: "%Y" }}', '{% if x %}y{% endif %}', '{% for a in b %}', '{% include "x" %}', '{{ tasks[params.x].outputs.y }}', '{{ "a" | append: ds }}'),
  fc.string({ maxLength: 12 }).map((inner) => `{{ ${inner} }}`),
)
const value = fc.oneof(
  fc.string({ maxLength: 16 }),
  fc.string({ unit: 'binary', maxLength: 6 }),
  template,
  template.map((t) => JSON.stringify(`x ${t} y`)),
  fc.constantFrom('~', 'null', 'true', 'no', '[]', '{}', '[a, b]', '{a: 1}', '&a x', '*a', '!!str x', '|', '>-', '"', "'", '0x1F', '1e400', '-0', '.nan', '2026-02-30', '@daily', '0 25 * * *', '30s', 'noop', 'shell'),
  fc.integer().map(String),
  fc.double().map(String),
)
const insertion = fc.oneof(fc.constantFrom(...SIGNIFICANT), fc.constantFrom(...SNIPPETS), fc.string({ maxLength: 8 }), template)

export const mutationArbitrary: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: insertion }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('swap' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constant('deleteLine' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('duplicateLine' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('swapLines' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constant('replaceValue' as const), line: fc.nat(), value }),
  fc.record({ kind: fc.constant('indent' as const), line: fc.nat(), delta: fc.integer({ min: -4, max: 4 }) }),
)

/** Applies one mutation; positions wrap around the text, so any generated number is meaningful. */
export function mutate(text: string, m: Mutation): string {
  const n = Math.max(1, text.length)
  const lines = text.split('\n')
  const lineAt = (i: number): number => i % lines.length
  switch (m.kind) {
    case 'delete': {
      const at = m.at % n
      return text.slice(0, at) + text.slice(at + m.length)
    }
    case 'insert': {
      const at = m.at % (text.length + 1)
      return text.slice(0, at) + m.text + text.slice(at)
    }
    case 'duplicate': {
      const at = m.at % n
      const piece = text.slice(at, at + m.length)
      return text.slice(0, at) + piece + piece + text.slice(at + m.length)
    }
    case 'swap': {
      const chars = [...text]
      if (chars.length < 2) return text
      const a = m.a % chars.length
      const b = m.b % chars.length
      ;[chars[a], chars[b]] = [chars[b]!, chars[a]!]
      return chars.join('')
    }
    case 'deleteLine':
      lines.splice(lineAt(m.line), 1)
      return lines.join('\n')
    case 'duplicateLine': {
      const i = lineAt(m.line)
      lines.splice(i, 0, lines[i]!)
      return lines.join('\n')
    }
    case 'swapLines': {
      const a = lineAt(m.a)
      const b = lineAt(m.b)
      ;[lines[a], lines[b]] = [lines[b]!, lines[a]!]
      return lines.join('\n')
    }
    case 'replaceValue': {
      // The value of the nth `key: value` line (counting round), or the line's end when it has none.
      const candidates = lines.map((line, i) => ({ i, at: line.search(/:\s/) })).filter((c) => c.at >= 0)
      const target = candidates.length > 0 ? candidates[m.line % candidates.length]! : { i: lineAt(m.line), at: lines[lineAt(m.line)]!.length - 2 }
      const line = lines[target.i]!
      lines[target.i] = `${line.slice(0, target.at + 2)}${m.value}`
      return lines.join('\n')
    }
    case 'indent': {
      const i = lineAt(m.line)
      const line = lines[i]!
      lines[i] = m.delta >= 0 ? ' '.repeat(m.delta) + line : line.replace(new RegExp(`^ {0,${-m.delta}}`), '')
      return lines.join('\n')
    }
  }
}

/** A valid fixture with one to eight random mutations applied. */
export function mutatedDagArbitrary(texts: readonly string[] = validFixtureTexts()): fc.Arbitrary<string> {
  return fc
    .record({ base: fc.constantFrom(...texts), mutations: fc.array(mutationArbitrary, { minLength: 1, maxLength: 8 }) })
    .map(({ base, mutations }) => mutations.reduce(mutate, base))
}

export type Outcome = 'ok' | 'error'

export interface CheckOptions {
  /** Also require a valid file to read the same with the careful parser as with the fast path. */
  crossCheck?: boolean
}

/** JSON-equal values: -0 and 0 are the same setting. */
const normal = (value: unknown): unknown => JSON.parse(JSON.stringify(value, (_key, v: unknown) => (Object.is(v, -0) ? 0 : v))) as unknown

/** Validates one input and checks every diagnostic; throws an AssertionError on a violation. */
export function checkValidation(text: string, options: CheckOptions = {}): Outcome {
  const bytes = new TextEncoder().encode(text)
  const result = validateSource('fuzz.yaml', bytes)
  const decoded = new TextDecoder().decode(bytes).replace(/^\ufeff/, '')
  const lines = decoded.split('\n')
  for (const d of result.diagnostics) {
    const where = `${d.code} at ${d.line}:${d.column} (${d.message})`
    assert.ok(isErrorCode(d.code), `unknown code: ${where}`)
    assert.ok(typeof d.message === 'string' && d.message.length > 0, `empty message: ${where}`)
    assert.ok(Number.isInteger(d.line) && d.line >= 1, `bad line: ${where}`)
    assert.ok(Number.isInteger(d.column) && d.column >= 1, `bad column: ${where}`)
    assert.ok(d.line <= lines.length, `line past the end of the file (${lines.length} lines): ${where}`)
    assert.ok(d.column <= lines[d.line - 1]!.length + 1, `column past the end of line ${d.line} (${lines[d.line - 1]!.length} characters): ${where}`)
    assert.ok(d.severity === 'error' || d.severity === 'warning', `bad severity: ${where}`)
  }
  const errors = result.diagnostics.filter((d) => d.severity === 'error')
  assert.equal(result.ok, errors.length === 0, 'ok must mean "no error diagnostics"')
  if (result.ok) assert.ok(result.value !== undefined && result.kind !== undefined, 'a valid file has a parsed value and a kind')
  if (result.ok && options.crossCheck) {
    // A valid file may have been read by the js-yaml fast path; the careful parser, whose positions
    // every diagnostic uses, must read the same value, or a file's validity depends on the parser.
    const careful = loadYaml(bytes)
    assert.ok(careful.ok, `valid by the fast path, refused by the careful parser: ${careful.ok ? '' : careful.problems.map((p) => p.message).join('; ')}`)
    assert.deepEqual(normal(careful.yaml.value), normal(result.value), 'the fast and careful parsers read different values')
  }
  return result.ok ? 'ok' : 'error'
}

/** The property; `onOutcome` lets the bench count valid and invalid inputs. */
export function validateProperty(onOutcome: (outcome: Outcome) => void = () => {}, options: CheckOptions & { texts?: readonly string[] } = {}): fc.IPropertyWithHooks<[string]> {
  return fc.property(mutatedDagArbitrary(options.texts), (text) => {
    onOutcome(checkValidation(text, options))
  })
}
