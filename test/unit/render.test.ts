import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { isTruthyWhen, renderTaskTemplates } from '../../engine/template/render.ts'
import type { TemplateVariables } from '../../engine/template/render.ts'
import { createSecretStore } from '../../engine/secrets/secrets.ts'
import type { SecretStore } from '../../engine/secrets/secrets.ts'

function variables(overrides: Partial<TemplateVariables> = {}): TemplateVariables {
  return {
    dag: { id: 'churn_model' },
    run: {
      id: 'run-42',
      logical_date: '2026-03-01T02:00:00.000Z',
      data_interval_start: '2026-03-01T02:00:00.000Z',
      data_interval_end: '2026-03-02T02:00:00.000Z',
      is_latest: true,
    },
    task: { id: 'train', attempt: 3 },
    ds: '2026-03-01',
    ds_nodash: '20260301',
    params: { min_auc: 0.8, n: 5, name: 'churn', flag: false, list: ['a', 'b'], obj: { k: 1 } },
    tasks: { ingest: { outputs: { rows: 1200, dataset: 'events' } } },
    secrets: createSecretStore({ env: { CAIRN_SECRET_API_TOKEN: 'tok-123456' } }),
    ...overrides,
  }
}

function renderOne(text: string, vars = variables()): string {
  const result = renderTaskTemplates({ params: { v: text } }, vars)
  assert.ok(result.ok, result.ok ? '' : result.message)
  return result.params.v as string
}

test('every template variable renders', () => {
  const cases: [string, string][] = [
    ['{{ dag.id }}', 'churn_model'],
    ['{{ run.id }}', 'run-42'],
    ['{{ run.logical_date }}', '2026-03-01T02:00:00.000Z'],
    ['{{ run.data_interval_start }}', '2026-03-01T02:00:00.000Z'],
    ['{{ run.data_interval_end }}', '2026-03-02T02:00:00.000Z'],
    ['{{ task.id }}', 'train'],
    ['{{ task.attempt }}', '3'],
    ['{{ ds }}', '2026-03-01'],
    ['{{ ds_nodash }}', '20260301'],
    ['{{ params.name }}', 'churn'],
    ['{{ tasks.ingest.outputs.rows }}', '1200'],
    ['{{ tasks.ingest.outputs.dataset }}', 'events'],
    ['{{ secrets.API_TOKEN }}', 'tok-123456'],
    ['data/{{ ds_nodash }}/{{ params.name }}.csv', 'data/20260301/churn.csv'],
    ['{% if params.n > 3 %}big{% else %}small{% endif %}', 'big'],
    ['{{ params.name | upcase }}', 'CHURN'],
  ]
  for (const [template, expected] of cases) assert.equal(renderOne(template), expected, template)
})

test('strings in, strings out: a lone expression of a number, boolean or list still renders to a string', () => {
  assert.equal(renderOne('{{ params.n }}'), '5')
  assert.equal(renderOne('{{ params.min_auc }}'), '0.8')
  assert.equal(renderOne('{{ params.flag }}'), 'false')
  assert.equal(renderOne('{{ params.obj | json }}'), '{"k":1}')
  assert.equal(renderOne('{{ params.list | join: "," }}'), 'a,b')
})

test('params, env and when are rendered recursively; other values are left untouched', () => {
  const result = renderTaskTemplates(
    {
      params: { nested: { list: ['{{ ds }}', 7, true, null, { deep: '{{ task.id }}' }] }, plain: 'no template', n: 3 },
      env: { DAY: '{{ ds_nodash }}', SEED: 42, ON: true },
      when: '{{ params.n }}',
    },
    variables(),
  )
  assert.ok(result.ok)
  assert.deepEqual(result.params, { nested: { list: ['2026-03-01', 7, true, null, { deep: 'train' }] }, plain: 'no template', n: 3 })
  assert.deepEqual(result.env, { DAY: '20260301', SEED: '42', ON: 'true' })
  assert.equal(result.when, true)
})

test('a rendered value is never rendered a second time', () => {
  const hostile = {
    expr: '{{ 7*7 }}',
    raw: '{% raw %}{{ dag.id }}{% endraw %}',
    tag: '{% if true %}yes{% endif %}',
    nested: '{{ secrets.API_TOKEN }}',
  }
  const vars = variables({ params: hostile })
  for (const [key, value] of Object.entries(hostile)) assert.equal(renderOne(`{{ params.${key} }}`, vars), value, key)
  assert.equal(renderOne('x {{ params.expr }} y', vars), 'x {{ 7*7 }} y')
  // raw in the template itself yields literal braces, which stay literal.
  assert.equal(renderOne('{% raw %}{{ dag.id }}{% endraw %}', vars), '{{ dag.id }}')
  // The secret referenced inside a param value was never looked up.
  const result = renderTaskTemplates({ params: { v: '{{ params.nested }}' } }, vars)
  assert.ok(result.ok)
  assert.deepEqual(result.secretValues, [])
})

test('literalParams are never rendered: their templates become environment variables (a shell script)', () => {
  const result = renderTaskTemplates(
    { params: { script: `echo "{{ params.name }}" $X {{ run.id }} 'a{{ ds }}'`, workdir: '/tmp/{{ run.id }}' }, env: { X: 'x' }, literalParams: ['script'] },
    variables(),
  )
  assert.ok(result.ok)
  assert.deepEqual(result.params, { script: `echo "\${CAIRN_TEMPLATE_1}" $X "\${CAIRN_TEMPLATE_2}" 'a'"\${CAIRN_TEMPLATE_3}"''`, workdir: '/tmp/run-42' })
  assert.deepEqual(result.env, { X: 'x', CAIRN_TEMPLATE_1: String(variables().params.name), CAIRN_TEMPLATE_2: 'run-42', CAIRN_TEMPLATE_3: '2026-03-01' })
})

test('literalParams: a tag or an unclosed {{ is refused, not run', () => {
  for (const script of ['{% if true %}echo{% endif %}', 'echo {{ params.name']) {
    const result = renderTaskTemplates({ params: { script }, literalParams: ['script'] }, variables())
    assert.equal(result.ok, false, script)
  }
})

test('keys are plain keys: __proto__ in params does not change prototypes', () => {
  const params = JSON.parse('{"__proto__": {"polluted": "{{ ds }}"}, "a": "{{ ds }}"}') as Record<string, unknown>
  const result = renderTaskTemplates({ params }, variables())
  assert.ok(result.ok)
  assert.ok(Object.hasOwn(result.params, '__proto__'))
  assert.deepEqual(Object.getOwnPropertyDescriptor(result.params, '__proto__')?.value, { polluted: '2026-03-01' })
  assert.equal(({} as Record<string, unknown>).polluted, undefined)
})

test('when: falsy table', () => {
  const falsy: unknown[] = ['', '   ', 'false', 'FALSE', ' False ', '0', 'null', 'NULL', 'none', 'None', false, 0, null]
  const truthy: unknown[] = ['true', 'yes', '1', 'no', 'off', 'anything', ' x ', true, 1, -1, '0.0']
  for (const value of falsy) {
    assert.equal(isTruthyWhen(value), false, JSON.stringify(value))
    const result = renderTaskTemplates({ when: value }, variables())
    assert.ok(result.ok)
    assert.equal(result.when, false, JSON.stringify(value))
  }
  for (const value of truthy) assert.equal(isTruthyWhen(value), true, JSON.stringify(value))

  const rendered = (when: string, params: Record<string, unknown>): boolean => {
    const result = renderTaskTemplates({ when }, variables({ params }))
    assert.ok(result.ok, result.ok ? '' : result.message)
    return result.when
  }
  assert.equal(rendered('{{ params.x }}', { x: false }), false)
  assert.equal(rendered('{{ params.x }}', { x: true }), true)
  assert.equal(rendered('{{ params.x }}', { x: 0 }), false)
  assert.equal(rendered('{{ params.x }}', { x: null }), false)
  assert.equal(rendered('{{ params.x }}', { x: '' }), false)
  assert.equal(rendered('{{ params.x }}', { x: 'None' }), false)
  assert.equal(rendered('{{ params.x }}', { x: 3 }), true)
  assert.equal(rendered('{% if params.x > 2 %}go{% endif %}', { x: 1 }), false)
  // No `when` at all: the task runs.
  const none = renderTaskTemplates({}, variables())
  assert.ok(none.ok)
  assert.equal(none.when, true)
})

test('strict variables: an unknown variable, param, output or filter is an error naming the place', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ v: '{{ nope }}' }, /params\.v: undefined variable: nope/],
    [{ v: '{{ params.missing }}' }, /params\.v: undefined variable: params\.missing/],
    [{ list: ['ok', '{{ tasks.other.outputs.x }}'] }, /params\.list\[1\]: undefined variable: tasks\.other/],
    [{ v: '{{ tasks.ingest.outputs.nope }}' }, /undefined variable: tasks\.ingest\.outputs\.nope/],
    [{ v: '{{ params.constructor }}' }, /undefined variable: params\.constructor/],
    [{ v: '{{ ds | nofilter }}' }, /undefined filter: nofilter/],
    [{ v: '{{ unclosed' }, /not closed/],
  ]
  for (const [params, pattern] of cases) {
    const result = renderTaskTemplates({ params }, variables())
    assert.equal(result.ok, false, JSON.stringify(params))
    assert.match(result.ok ? '' : result.message, pattern)
  }
  const env = renderTaskTemplates({ env: { A: '{{ oops }}' } }, variables())
  assert.equal(env.ok, false)
  assert.match(env.ok ? '' : env.message, /^env\.A: undefined variable: oops/)
  // Every problem is reported, not only the first.
  const two = renderTaskTemplates({ params: { a: '{{ x }}' }, when: '{{ y }}' }, variables())
  assert.match(two.ok ? '' : two.message, /params\.a: .*x.*; when: .*y/)
})

test('secrets are loaded lazily: only the ones a template reads are looked up', () => {
  const looked: string[] = []
  const store: SecretStore = {
    get(name) {
      looked.push(name)
      return { API: 'api-value-1', OTHER: 'other-value-2' }[name]
    },
  }
  const result = renderTaskTemplates(
    { params: { a: '{{ secrets.API }}', b: 'Bearer {{ secrets.API }}', c: '{{ ds }}' }, env: { X: 'plain' } },
    variables({ secrets: store }),
  )
  assert.ok(result.ok)
  assert.deepEqual(result.params, { a: 'api-value-1', b: 'Bearer api-value-1', c: '2026-03-01' })
  assert.deepEqual(looked, ['API'])
  assert.deepEqual(result.secretValues, ['api-value-1'])
})

test('secrets: a missing one is a clear error, the set cannot be listed, and bad names are refused', () => {
  const missing = renderTaskTemplates({ params: { v: '{{ secrets.NOPE }}' } }, variables())
  assert.match(missing.ok ? '' : missing.message, /^params\.v: a secret it uses is not set \(set CAIRN_SECRET_<NAME>/)

  const whole = renderTaskTemplates({ params: { v: '{{ secrets }}' } }, variables())
  assert.match(whole.ok ? '' : whole.message, /cannot be printed/)

  const loop = renderTaskTemplates({ params: { v: '{% for s in secrets %}{{ s }}{% endfor %}{{ secrets | json }}' } }, variables())
  assert.ok(loop.ok)
  assert.equal(loop.params.v, '{}')

  const traversal = renderTaskTemplates({ params: { v: '{{ secrets["../etc/passwd"] }}' } }, variables())
  assert.match(traversal.ok ? '' : traversal.message, /invalid secret name/)
})

test('an unknown secret name is never echoed: a computed name, even another secret used as one, stays out of the message', () => {
  const store = createSecretStore({ env: { CAIRN_SECRET_KEY: 'hunter22-value', CAIRN_SECRET_PATHY: 'x/../y-value' } })
  const cases = [
    ['{{ secrets[secrets.key] }}', ['hunter22-value', 'HUNTER22-VALUE']],
    ['{{ secrets[params.which] }}', ['guessable-name', 'GUESSABLE-NAME']],
    ['{{ secrets[secrets.pathy] }}', ['x/../y-value', 'X/../Y-VALUE']],
    ['{{ secrets.plain_missing }}', ['plain_missing', 'PLAIN_MISSING']],
  ] as const
  for (const [template, forbidden] of cases) {
    const result = renderTaskTemplates({ params: { v: template } }, variables({ secrets: store, params: { which: 'guessable-name' } }))
    assert.equal(result.ok, false, template)
    const message = result.ok ? '' : result.message
    assert.match(message, /^params\.v: (a secret it uses is not set|invalid secret name)/, template)
    for (const text of forbidden) assert.ok(!message.includes(text), `${template}: ${message}`)
  }
})

test('secrets from a dir', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-render-'))
  try {
    writeFileSync(path.join(dir, 'db_password'), 'hunter2-pass\n')
    const vars = variables({ secrets: createSecretStore({ env: {}, dir }) })
    assert.equal(renderOne('postgres://u:{{ secrets.db_password }}@db', vars), 'postgres://u:hunter2-pass@db')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('error messages never show the value of a secret that was loaded', () => {
  const store: SecretStore = {
    get(name) {
      if (name === 'A') return 'alpha-secret'
      throw new Error('backend refused B after serving alpha-secret')
    },
  }
  const result = renderTaskTemplates({ params: { a: '{{ secrets.A }}', b: '{{ secrets.B }}' } }, variables({ secrets: store }))
  assert.equal(result.ok, false)
  assert.match(result.ok ? '' : result.message, /params\.b: backend refused B after serving \*\*\*/)
  assert.deepEqual(result.secretValues, ['alpha-secret'])
})
