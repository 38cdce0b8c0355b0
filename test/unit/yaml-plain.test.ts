/**
 * The plain-YAML reader of the validator's fastest path must read every text it accepts exactly as
 * the careful parser (yaml-load.ts) does, and give up on everything else: checked on every fixture
 * and example DAG, on mutated fixtures, and on generated documents full of scalars whose type
 * depends on the schema (null, booleans, numbers in all forms), indicators, quotes and indentation.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { parsePlainYaml } from '../../engine/dag/yaml-plain.ts'
import { loadYaml } from '../../engine/dag/yaml-load.ts'
import { mutatedDagArbitrary } from '../fuzz/validate-property.ts'

const root = new URL('../../', import.meta.url).pathname

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? yamlFiles(path) : /\.ya?ml$/.test(name) ? [path] : []
  })
}

/** Whether the plain reader accepted the text; throws when it read it differently from the careful parser. */
function agrees(text: string): boolean {
  const plain = parsePlainYaml(text)
  if (plain === undefined) return false
  const careful = loadYaml(new TextEncoder().encode(text))
  assert.ok(careful.ok, `accepted by the plain reader, refused by the careful parser:\n${text}\n${careful.ok ? '' : careful.problems.map((p) => `${p.code} ${p.message}`).join('\n')}`)
  assert.deepStrictEqual(plain, careful.yaml.value, `read differently:\n${text}`)
  return true
}

test('every fixture and example DAG the plain reader accepts reads as with the careful parser', () => {
  const files = [...yamlFiles(join(root, 'test/fixtures')), ...yamlFiles(join(root, 'dags'))]
  let accepted = 0
  for (const file of files) if (agrees(readFileSync(file, 'utf8'))) accepted++
  // Most valid fixtures are plain YAML: the reader is exercised, not bypassed.
  assert.ok(accepted >= 20, `only ${accepted} of ${files.length} files were read by the plain reader`)
})

test('a typical DAG file is read by the plain reader', () => {
  const text = [
    '# yaml-language-server: $schema=../schemas/dag.schema.json',
    'dag: churn',
    'tags: [ml, "daily"]',
    "schedule: '0 3 * * *'",
    'start_date: 2026-01-01',
    'params:',
    '  threshold: { type: number, default: 0.8, minimum: 0 }',
    'tasks:',
    '  extract:',
    '    operator: shell   # a comment',
    '    params:',
    '      command:',
    '      - python',
    '      - "--ds={{ ds }}"',
    '  train:',
    '    depends_on: [extract]',
    '    operator: noop',
    '    retries: -1',
    '    list:',
    '      - a: 1',
    '        b: [x, {c: d}]',
    '      -',
    '        e: ~',
    '',
  ].join('\n')
  assert.ok(agrees(text))
})

test('mutated fixtures: whatever the plain reader accepts reads as with the careful parser (3,000 runs)', () => {
  let accepted = 0
  fc.assert(
    fc.property(mutatedDagArbitrary(), (text) => {
      if (agrees(text)) accepted++
    }),
    { numRuns: 3000, seed: 20261201 },
  )
  assert.ok(accepted > 150, `only ${accepted} mutated files were read by the plain reader`)
})

/** Scalars whose reading depends on the schema, on indicators or on quoting. */
const SCALARS = [
  ...['~', 'null', 'Null', 'NULL', 'nULL', 'true', 'True', 'TRUE', 'tRUE', 'false', 'FALSE', 'yes', 'no', 'on', 'off', 'y', 'n'],
  ...['0', '-0', '+0', '+1', '-12', '007', '08', '1_000', '123456789012345', '1234567890123456789', '0x1F', '0X1f', '0o17', '0b101', '1e3', '1E-3', '-1.5e+3'],
  ...['1.5', '.5', '-.5', '+.5', '1.', '-1.', '1.50', '00.1', '1.2.3', '.', '..', '.inf', '-.Inf', '+.INF', '.nan', '.NaN', 'inf', 'nan', '-', '+', '--x', '-x', '-5x'],
  ...['2026-01-01', '2026-01-01T00:00:00Z', '12:30', '1:2', '30s', '1h30m', '@daily', '0 3 * * *', '*/5 * * * *', 'a:b', 'a: b', 'a:', 'a #b', 'a#b', 'a # b'],
  ...['#x', '?x', '? x', ':x', '%x', '@x', '`x', '!x', '!!str x', '&x y', '*x', '|', '|-', '>', '>-', ',x', ']x', '}x', 'x]', 'x}', 'x,y', 'x, y', 'x y', 'x  y'],
  ...['"a"', '""', "''", '"a\\"b"', '"a\\\\b"', '"a\\/b"', '"a\\nb"', '"a\\tb"', '"\\u0041"', '"\\x41"', '"\\e"', '"a', "'a", "'it''s'", "'a\\nb'", '"a # b"', '"a: b"', '"{{ ds }}"'],
  ...['[a, b]', '[a,b]', '[ a , b ]', '[]', '[ ]', '{}', '{ }', '[a, ]', '[, a]', '[a,, b]', '[a b, c]', '[-a, --b]', '[- a]', '[a: 1]', '[1, 2.5, null, true]', '[[a], [b, [c]]]'],
  ...['{a: 1}', '{a:1}', '{a: 1, b: [x]}', '{a}', '{a: }', '{"a": 1}', '{"a":1}', "{'a': 1}", '{a: 1, a: 2}', '{1: a}', '{true: a}', '{__proto__: a}', '{a: {b: {c: d}}}', '[a] x', '[a]#x', '[a] #x'],
  ...['{{ ds }}', '{{ds}}', 'x {{ ds }}', 'é', 'naïve café', 'a\u00a0b', '日本', 'a\u2028b', 'x ', 'x  ', 'x\t', 'http://example.com/a?b=c#d', 'C:\\dir', "it's", 'say "hi"'],
  ...['😀', '"😀"', 'a\ud800', '"\udc00"', '\ud800\udc00x', 'a\u0085b', '\ufeffx', 'a\u3000b', 'a\u200bb', '\uffff'],
]
const KEYS = ['a', 'b', 'c', 'd', 'e', 'task_1', 'task_2', 'b-c', 'd.e', 'f/g', '1', '1a', 'true', 'null', '~', '-x', '.x', 'x y', '"q"', "'s'", '"a b"', '""', '__proto__', 'constructor', 'toString', 'k:', 'é']

type Node = { kind: 'scalar'; text: string } | { kind: 'block'; header: string; lines: string[] } | { kind: 'map'; entries: [string, Node][] } | { kind: 'seq'; items: Node[] }

/** Block scalars: headers, and lines written relative to the content's indentation (`<` one space less, `>` one more). */
const blockNode: fc.Arbitrary<Node> = fc.record({
  header: fc.constantFrom('|', '|-', '>', '>-', '|+', '>+', '|2', '| # c', '|  ', '>- '),
  lines: fc.array(fc.constantFrom('text', 'more words here', '', '', '   ', '# not a comment', 'a: b', '- x', '{{ ds }}', '"quoted"', '>x', ' indented', '  two', '<short'), { minLength: 1, maxLength: 5 }),
}).map(({ header, lines }) => ({ kind: 'block' as const, header, lines }))

/** Ordinary values, so that many generated documents are plain and the tricky ones are tested in context. */
const ORDINARY = ['x', 'hello world', '42', '-3', '0.5', 'true', '~', '"quoted"', "'single'", '[a, b]', '{a: 1}', '30s', '2026-01-01', 'shell', '"{{ ds }}"']
const scalarNode: fc.Arbitrary<Node> = fc
  .oneof({ arbitrary: fc.constantFrom(...SCALARS), weight: 1 }, { arbitrary: fc.constantFrom(...ORDINARY), weight: 6 })
  .map((text) => ({ kind: 'scalar' as const, text }))
const { node } = fc.letrec<{ node: Node; map: Node; seq: Node }>((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalarNode, scalarNode, blockNode, tie('map'), tie('seq')),
  map: fc.array(fc.tuple(fc.constantFrom(...KEYS), tie('node')), { minLength: 1, maxLength: 4 }).map((entries) => ({ kind: 'map' as const, entries })),
  seq: fc.array(tie('node'), { minLength: 1, maxLength: 4 }).map((items) => ({ kind: 'seq' as const, items })),
}))

interface Style {
  step: number
  indentless: boolean
  compact: boolean
  comment: boolean
}

/** Block YAML for a node; most layouts are valid, some (keys, scalars) on purpose are not. */
function render(value: Node, indent: number, style: Style, out: string[], prefix: string): void {
  const pad = ' '.repeat(indent)
  if (value.kind === 'block') {
    out.push(`${prefix}${value.header}`)
    const inner = ' '.repeat(indent + style.step)
    for (const line of value.lines) out.push(line === '' ? '' : line.startsWith('<') ? `${inner.slice(1)}${line.slice(1)}` : `${inner}${line}`)
    return
  }
  if (value.kind === 'scalar') {
    out.push(`${prefix}${value.text}${style.comment ? ' # note' : ''}`)
    return
  }
  if (value.kind === 'map') {
    value.entries.forEach(([key, child], i) => {
      const lead = i === 0 && prefix !== '' ? prefix : pad
      if (child.kind === 'scalar') out.push(`${lead}${key}: ${child.text}`)
      else if (child.kind === 'block') render(child, indent, style, out, `${lead}${key}: `)
      else {
        out.push(`${lead}${key}:${style.comment ? ' # c' : ''}`)
        const childIndent = child.kind === 'seq' && style.indentless ? indent : indent + style.step
        render(child, childIndent, style, out, '')
      }
    })
    return
  }
  for (const item of value.items) {
    if (item.kind === 'map' && style.compact) render(item, indent + 2, style, out, `${pad}- `)
    else if (item.kind === 'scalar') out.push(`${pad}- ${item.text}`)
    else if (item.kind === 'block') render(item, indent, style, out, `${pad}- `)
    else {
      out.push(`${pad}-`)
      render(item, indent + style.step, style, out, '')
    }
  }
}

const documents = fc
  .record({
    root: fc.array(fc.tuple(fc.constantFrom(...KEYS), node), { minLength: 1, maxLength: 5 }),
    style: fc.record({ step: fc.constantFrom(1, 2, 4), indentless: fc.boolean(), compact: fc.boolean(), comment: fc.boolean() }),
    blank: fc.boolean(),
  })
  .map(({ root, style, blank }) => {
    const out: string[] = []
    render({ kind: 'map', entries: root }, 0, style, out, '')
    return `${blank ? '# generated\n\n' : ''}${out.join('\n')}\n`
  })

test('generated documents: whatever the plain reader accepts reads as with the careful parser (5,000 runs)', () => {
  let accepted = 0
  fc.assert(
    fc.property(documents, (text) => {
      if (agrees(text)) accepted++
    }),
    { numRuns: 5000, seed: 20261202 },
  )
  assert.ok(accepted > 500, `only ${accepted} generated documents were read by the plain reader`)
})

test('each scalar alone reads as with the careful parser, at the top, in a list and in a flow list', () => {
  let accepted = 0
  for (const text of SCALARS) {
    for (const doc of [`k: ${text}\n`, `k:\n  - ${text}\n`, `k: [${text}]\n`, `k: {x: ${text}}\n`, `${text}: v\n`, `- ${text}\n`, `k: ${text}`]) {
      if (agrees(doc)) accepted++
    }
  }
  assert.ok(accepted > 200, `only ${accepted} were read by the plain reader`)
})

test('block scalars: literal and folded, clipped and stripped, read as with the careful parser', () => {
  const accepted = [
    'script: |\n  echo a\n  echo b\nnext: 1\n',
    'script: |-\n  echo a\n\n  echo b\n\n\nnext: 1\n',
    'query: >\n  select *\n  from t\n\n  where x\n',
    'query: >-\n  select *\n  from t\n',
    'a: |\n\n  after a blank line\n',
    'a: |\n    deeper\n      more\n    back\n',
    'a: |\n  # not a comment\n  x: y\n# a comment\nb: 2\n',
    'list:\n  - |\n    one\n  - >-\n    two\n    lines\n',
    'list:\n- k: |\n    v\n  j: 1\n',
    'a: |   \n  trailing spaces after the header\n',
    'a: |\n  x\n  ',
    'a: |\n  text  \n',
  ]
  for (const text of accepted) assert.ok(agrees(text), `not read by the plain reader:\n${text}`)
  // Left to the careful parser (or js-yaml): still never read differently.
  for (const text of ['a: |+\n  x\n\n', 'a: |2\n   x\n', 'a: | # c\n  x\n', 'a: >\n  x\n    more\n  y\n', 'a: |\n  x', 'a: |\nb: 1\n', 'a: |\n   \n  x\n', 'a: |\n  x\n     \n  y\n']) {
    assert.equal(agrees(text), false, text)
  }
})
