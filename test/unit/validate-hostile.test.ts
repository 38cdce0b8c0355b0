import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { validateSource } from '../../engine/dag/validate.ts'
import type { FileValidation } from '../../engine/dag/validate.ts'
import { isErrorCode } from '../../engine/errors.ts'
import { prng } from '../../engine/seeded-random.ts'

// SPEC section 1: oversized files, alias bombs, deep nesting, custom tags and binary data are refused
// with a clear error, never a crash, a hang or a prototype change.

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)

const random = prng

function randomBytes(seed: number, length: number): Uint8Array {
  const next = random(seed)
  return Uint8Array.from({ length }, () => Math.floor(next() * 256))
}

function randomText(seed: number, length: number): Uint8Array {
  const next = random(seed)
  const alphabet = 'abc: -[]{}&*!|>#\'"\n  \t,?%@`~0123456789dagtasks'
  return utf8(Array.from({ length }, () => alphabet[Math.floor(next() * alphabet.length)]).join(''))
}

function billionLaughs(levels: number): string {
  const lines = ['dag: laughs', 'l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]']
  for (let i = 1; i <= levels; i++) lines.push(`l${i}: &l${i} [${Array.from({ length: 10 }, () => `*l${i - 1}`).join(', ')}]`)
  lines.push('tasks:', '  a: { operator: noop }')
  return lines.join('\n') + '\n'
}

function deepBlockMapping(depth: number): string {
  let text = 'dag: deep\ntasks:\n'
  for (let i = 0; i < depth; i++) text += `${' '.repeat(i + 2)}k${i}:\n`
  return text + `${' '.repeat(depth + 2)}leaf\n`
}

function taskChain(length: number): string {
  // One long chain closed into a cycle at the end, so the graph passes are exercised in full.
  const lines = ['dag: long_chain', 'tasks:', `  t0: { operator: noop, depends_on: t${length - 1} }`]
  for (let i = 1; i < length; i++) lines.push(`  t${i}: { operator: noop, depends_on: t${i - 1} }`)
  return lines.join('\n') + '\n'
}

interface Hostile {
  name: string
  bytes: () => Uint8Array
  /** A code the diagnostics must include. */
  code: string
}

const twoMiB = 2 * 1024 * 1024

const HOSTILE: Hostile[] = [
  { name: 'alias bomb (billion laughs, 9 levels)', bytes: () => utf8(billionLaughs(9)), code: 'ALIAS_LIMIT' },
  { name: '101 aliases', bytes: () => utf8(`dag: aliases\nx: &x 1\nlist:\n${'  - *x\n'.repeat(101)}tasks:\n  a: { operator: noop }\n`), code: 'ALIAS_LIMIT' },
  { name: 'a 2 MiB file', bytes: () => utf8(`dag: big\ndescription: ${'x'.repeat(twoMiB)}\ntasks:\n  a: { operator: noop }\n`), code: 'FILE_TOO_LARGE' },
  { name: 'a 2 MiB file of NUL bytes', bytes: () => new Uint8Array(twoMiB), code: 'FILE_TOO_LARGE' },
  { name: 'flow nesting 1,000 deep', bytes: () => utf8(`dag: deep\ntasks: ${'['.repeat(1000)}${']'.repeat(1000)}\n`), code: 'DEPTH_LIMIT' },
  { name: 'unclosed flow nesting 1,000 deep', bytes: () => utf8(`dag: deep\ntasks: ${'{a: '.repeat(1000)}\n`), code: 'DEPTH_LIMIT' },
  { name: 'block mappings 1,000 deep', bytes: () => utf8(deepBlockMapping(1000)), code: 'DEPTH_LIMIT' },
  { name: 'block mappings 100 deep', bytes: () => utf8(deepBlockMapping(100)), code: 'DEPTH_LIMIT' },
  { name: 'block sequences 1,000 deep', bytes: () => utf8(`dag: deep\ntasks:\n  ${'- '.repeat(1000)}leaf\n`), code: 'DEPTH_LIMIT' },
  { name: 'custom tag !!js/function', bytes: () => utf8('dag: tag\ntasks:\n  a:\n    operator: shell\n    params: { script: !!js/function "function () {}" }\n'), code: 'CUSTOM_TAG' },
  { name: 'custom tag !!python/object', bytes: () => utf8('dag: !!python/object/apply:os.system ["rm -rf /"]\ntasks: {}\n'), code: 'CUSTOM_TAG' },
  { name: 'custom tag !!binary', bytes: () => utf8('dag: tag\nowner: !!binary aGVsbG8=\ntasks:\n  a: { operator: noop }\n'), code: 'CUSTOM_TAG' },
  { name: 'local tag !include', bytes: () => utf8('dag: tag\ntasks: !include tasks.yaml\n'), code: 'CUSTOM_TAG' },
  { name: 'merge key <<', bytes: () => utf8('dag: merge\nbase: &base { operator: noop }\ntasks:\n  a:\n    <<: *base\n'), code: 'UNKNOWN_KEY' },
  { name: 'NUL bytes', bytes: () => utf8('dag: nul\u0000\ntasks:\n  a: { operator: noop }\n'), code: 'INVALID_ENCODING' },
  { name: 'invalid UTF-8', bytes: () => Uint8Array.from([...utf8('dag: bad\nowner: '), 0xc3, 0x28, 0xff, 0x0a]), code: 'INVALID_ENCODING' },
  { name: 'UTF-16 text', bytes: () => Uint8Array.from([0xff, 0xfe, ...[...'dag: x\n'].flatMap((c) => [c.charCodeAt(0), 0])]), code: 'INVALID_ENCODING' },
  { name: 'an empty file', bytes: () => new Uint8Array(0), code: 'EMPTY_DOCUMENT' },
  { name: 'only whitespace', bytes: () => utf8('\n\n   \n'), code: 'EMPTY_DOCUMENT' },
  { name: 'only comments', bytes: () => utf8('# a comment\n# another one\n'), code: 'EMPTY_DOCUMENT' },
  { name: 'a list', bytes: () => utf8('- dag: listed\n- tasks: {}\n'), code: 'NOT_A_MAPPING' },
  { name: 'a scalar', bytes: () => utf8('just some text\n'), code: 'NOT_A_MAPPING' },
  { name: 'a null document', bytes: () => utf8('~\n'), code: 'NOT_A_MAPPING' },
  { name: 'duplicate keys', bytes: () => utf8('dag: one\ndag: two\ntasks:\n  a: { operator: noop }\n'), code: 'DUPLICATE_KEY' },
  { name: '10,000 duplicate keys', bytes: () => utf8(`dag: dup\ntasks:\n  a: { operator: noop }\n${'x: 1\n'.repeat(10_000)}`), code: 'DUPLICATE_KEY' },
  { name: '10,000 unknown keys', bytes: () => utf8(`dag: keys\ntasks:\n  a: { operator: noop }\n${Array.from({ length: 10_000 }, (_, i) => `key${i}: ${i}\n`).join('')}`), code: 'UNKNOWN_KEY' },
  { name: 'tab indentation', bytes: () => utf8('dag: tabs\ntasks:\n\ta:\n\t\toperator: noop\n'), code: 'YAML_TAB_INDENT' },
  { name: 'two documents', bytes: () => utf8('dag: one\ntasks:\n  a: { operator: noop }\n---\ndag: two\n'), code: 'MULTIPLE_DOCUMENTS' },
  { name: 'a 5,000-task chain closed into a cycle', bytes: () => utf8(taskChain(5_000)), code: 'DEPENDENCY_CYCLE' },
  { name: 'a template at the parse limit', bytes: () => utf8(`dag: t\ntasks:\n  a:\n    operator: noop\n    env: { A: "${'{{ ds }}'.repeat(10_000)}" }\n`), code: 'TEMPLATE_SYNTAX' },
  { name: 'a 1 MiB line', bytes: () => utf8(`dag: line\nnote: ${'y'.repeat(1024 * 1024 - 64)}\ntasks:\n  a: { operator: noop }\n`), code: 'UNKNOWN_KEY' },
  ...[1, 2, 3, 4, 5, 6, 7, 8].map((seed) => ({ name: `random bytes, seed ${seed}`, bytes: () => randomBytes(seed, 4096), code: 'INVALID_ENCODING' })),
  ...[1, 2, 3, 4, 5, 6, 7, 8].map((seed) => ({ name: `random YAML-ish text, seed ${seed}`, bytes: () => randomText(seed, 2048), code: '' })),
]

/**
 * Linux keeps the peak resident set of a process (VmHWM) and lets the process reset it to the current
 * size (writing 5 to /proc/self/clear_refs): so one document's peak can be measured in this process,
 * whatever the documents before it left behind. Undefined where that is not available.
 */
function peakMeter(): (() => () => number) | undefined {
  const read = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) * 1024
  try {
    writeFileSync('/proc/self/clear_refs', '5')
    if (!Number.isFinite(read('VmHWM')) || !Number.isFinite(read('VmRSS'))) return undefined
  } catch {
    return undefined
  }
  return () => {
    writeFileSync('/proc/self/clear_refs', '5')
    const before = read('VmRSS')
    return () => read('VmHWM') - before
  }
}

const MiB = 1024 * 1024
const meter = peakMeter()

function checkDiagnostics(result: FileValidation, name: string): void {
  assert.ok(result.diagnostics.length > 0, `${name}: no diagnostic`)
  assert.equal(result.ok, false, `${name}: reported as valid`)
  for (const d of result.diagnostics) {
    assert.ok(Number.isInteger(d.line) && d.line >= 1, `${name}: line ${d.line}`)
    assert.ok(Number.isInteger(d.column) && d.column >= 1, `${name}: column ${d.column}`)
    assert.ok(isErrorCode(d.code), `${name}: unknown code ${d.code}`)
    assert.ok(d.message.length > 0, `${name}: empty message`)
  }
}

describe('hostile documents', () => {
  before(() => {
    // Compile the schemas once, so the first case is not charged for it.
    validateSource('warm-up.yaml', utf8('dag: warm\ntasks:\n  a: { operator: noop }\n'))
  })

  it('the peak memory of each document is measured on Linux, not silently left out', () => {
    if (process.platform === 'linux') assert.ok(meter, '/proc/self/clear_refs and VmHWM are not available')
    if (!meter) return
    const measure = meter()
    const ballast = new Uint8Array(64 * MiB).fill(1)
    assert.ok(measure() >= 60 * MiB, 'the meter sees a 64 MiB allocation')
    assert.equal(ballast[ballast.length - 1], 1)
  })

  for (const hostile of HOSTILE) {
    it(`${hostile.name}: refused with a positioned diagnostic within 1 s of CPU and 200 MB`, () => {
      const bytes = hostile.bytes()
      const measure = meter?.()
      // CPU time, not wall time: what the document costs, whatever else the machine is doing (a loaded
      // 2-core CI machine made wall-clock limits fail at random). A blow-up still costs seconds of CPU.
      const started = process.cpuUsage()
      const result = validateSource('hostile.yaml', bytes)
      const used = process.cpuUsage(started)
      const elapsed = (used.user + used.system) / 1000
      const grown = measure?.()
      checkDiagnostics(result, hostile.name)
      if (hostile.code) {
        assert.ok(
          result.diagnostics.some((d) => d.code === hostile.code),
          `${hostile.name}: expected ${hostile.code}, got ${result.diagnostics.map((d) => d.code).join(', ')}`,
        )
      }
      assert.ok(elapsed < 1000, `${hostile.name}: took ${elapsed.toFixed(0)} ms of CPU`)
      // The peak while reading it, over what the process held just before (Linux only).
      if (grown !== undefined) assert.ok(grown < 200 * MiB, `${hostile.name}: the resident set peaked ${(grown / MiB).toFixed(0)} MB above where it started`)
    })
  }

  it('__proto__ and constructor keys stay plain keys and change no prototype', () => {
    const before = Object.getOwnPropertyNames(Object.prototype).sort()
    const text = [
      'dag: proto',
      '__proto__: { polluted: yes }',
      '"constructor": { prototype: { polluted: yes } }',
      'params:',
      '  __proto__: { type: string, default: polluted }',
      'tasks:',
      '  a:',
      '    operator: noop',
      '    env: { __proto__: polluted, toString: "1" }',
      '    params: { __proto__: { polluted: true } }',
      '',
    ].join('\n')
    const result = validateSource('proto.yaml', utf8(text))
    checkDiagnostics(result, 'proto')
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), before)

    const value = result.value!
    assert.equal(Object.getPrototypeOf(value), Object.prototype)
    assert.ok(Object.hasOwn(value, '__proto__'), 'top-level __proto__ is an own key')
    assert.deepEqual(Object.getOwnPropertyDescriptor(value, '__proto__')?.value, { polluted: 'yes' })
    assert.ok(Object.hasOwn(value, 'constructor'))
    const task = (value.tasks as Record<string, Record<string, unknown>>).a!
    const env = task.env as Record<string, unknown>
    assert.equal(Object.getPrototypeOf(env), Object.prototype)
    assert.equal(Object.getOwnPropertyDescriptor(env, '__proto__')?.value, 'polluted')
    assert.ok(Object.hasOwn(value.params as object, '__proto__'))

    // Unknown keys are reported by name, at the key.
    const unknown = result.diagnostics.filter((d) => d.code === 'UNKNOWN_KEY').map((d) => `${d.path} ${d.line}:${d.column}`)
    assert.deepEqual(unknown.sort(), ['__proto__ 2:1', 'constructor 3:1', 'tasks.a.params.__proto__ 10:15'])
  })

  it('__proto__ as a plain key in env and params is valid', () => {
    const text = 'dag: proto_ok\nparams:\n  __proto__: { type: string, default: x }\ntasks:\n  a:\n    operator: shell\n    env: { __proto__: x }\n    params: { command: [echo, "{{ params.__proto__ }}"] }\n'
    const result = validateSource('proto-ok.yaml', utf8(text))
    assert.deepEqual(result.diagnostics, [])
    assert.equal(({} as Record<string, unknown>).x, undefined)
    // A valid file is read by the js-yaml fast path: the same guarantees hold there.
    const params = result.value!.params as Record<string, unknown>
    assert.ok(Object.hasOwn(params, '__proto__'))
    assert.equal(Object.getPrototypeOf(params), Object.prototype)
    const env = (result.value!.tasks as Record<string, Record<string, unknown>>).a!.env as Record<string, unknown>
    assert.equal(Object.getOwnPropertyDescriptor(env, '__proto__')?.value, 'x')
  })

  it('the whole hostile set, three times over, grows the resident set by less than 200 MB', () => {
    const start = process.memoryUsage().rss
    for (let round = 0; round < 3; round++) {
      for (const hostile of HOSTILE) validateSource('hostile.yaml', hostile.bytes())
    }
    const grown = (process.memoryUsage().rss - start) / (1024 * 1024)
    assert.ok(grown < 200, `rss grew by ${grown.toFixed(0)} MB`)
  })
})
