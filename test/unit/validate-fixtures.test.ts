import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { validateSource } from '../../engine/dag/validate.ts'
import { ERROR_CODES, isErrorCode } from '../../engine/errors.ts'
import type { Json } from '../../engine/dag/yaml-load.ts'
import { OPERATORS } from '../../operators/index.ts'

// Each invalid fixture starts with one `# expect: CODE LINE:COL` line per diagnostic it must produce;
// the validator must report exactly those (warnings included), no more and no fewer. A `# queues: a, b`
// line validates it as cairn.yaml with `workers.queues: [a, b]` would; `# model_servers: default, a`
// as cairn.yaml declaring the model server `a` would.

const fixtures = new URL('../fixtures/dags/', import.meta.url)
const validDir = new URL('valid/', fixtures)
const invalidDir = new URL('invalid/', fixtures)

const yamlFiles = (dir: URL): string[] => readdirSync(dir).filter((name) => /\.ya?ml$/.test(name)).sort()

interface Expected {
  code: string
  line: number
  column: number
}

const key = (d: Expected): string => `${d.code} ${d.line}:${d.column}`

function expectations(text: string, name: string): Expected[] {
  const out: Expected[] = []
  for (const line of text.split('\n')) {
    if (!line.startsWith('#')) break
    const match = /^# expect: ([A-Z_]+) (\d+):(\d+)\s*$/.exec(line)
    if (line.startsWith('# expect:') && !match) throw new Error(`${name}: malformed expect line: ${line}`)
    if (match) out.push({ code: match[1]!, line: Number(match[2]), column: Number(match[3]) })
  }
  return out
}

const validNames = yamlFiles(validDir)
const invalidNames = yamlFiles(invalidDir)

describe('invalid DAG fixtures', () => {
  it('there are enough of them', () => {
    assert.ok(invalidNames.length >= 45, `only ${invalidNames.length} invalid fixtures`)
  })

  for (const name of invalidNames) {
    it(name, () => {
      const bytes = readFileSync(new URL(name, invalidDir))
      const expected = expectations(bytes.toString('utf8'), name)
      assert.ok(expected.length > 0, `${name} has no "# expect: CODE LINE:COL" line at the top`)
      for (const e of expected) assert.ok(isErrorCode(e.code), `${name}: ${e.code} is not a code of engine/errors.ts`)
      const listed = (what: string) => new RegExp(`^# ${what}: (.+)$`, 'm').exec(bytes.toString('utf8'))?.[1]?.split(',').map((q) => q.trim())
      const queues = listed('queues')
      const servers = listed('model_servers')
      const names = { pools: new Set<string>(), clusters: new Set<string>(), ...(queues ? { queues: new Set(queues) } : {}), ...(servers ? { modelServers: new Set(servers) } : {}) }
      const result = validateSource(name, bytes, queues || servers ? { names } : {})
      const got = result.diagnostics.map(key).sort()
      assert.deepEqual(got, expected.map(key).sort(), `diagnostics of ${name}:\n${result.diagnostics.map((d) => `  ${key(d)} ${d.message}`).join('\n')}`)
      for (const d of result.diagnostics) {
        assert.equal(d.file, name)
        assert.ok(d.message.length > 0)
      }
      if (result.diagnostics.some((d) => d.severity === 'error')) assert.equal(result.ok, false)
    })
  }

  it('together cover every code a DAG or feature view file can produce', () => {
    const needConfigOrFolder = new Set(['FILE_READ', 'USAGE', 'PATH_NOT_FOUND', 'UNKNOWN_POOL', 'UNKNOWN_CLUSTER', 'DUPLICATE_DAG_ID', 'DUPLICATE_FEATURE_VIEW'])
    // Need exact bytes a text fixture cannot hold reliably; test/unit/validate-hostile.test.ts has them.
    const generated = new Set(['FILE_TOO_LARGE', 'INVALID_ENCODING', 'YAML_TAB_INDENT'])
    const notProduced = new Set<string>()
    const covered = new Set(invalidNames.flatMap((name) => expectations(readFileSync(new URL(name, invalidDir), 'utf8'), name).map((e) => e.code)))
    const missing = Object.keys(ERROR_CODES).filter((code) => !needConfigOrFolder.has(code) && !generated.has(code) && !notProduced.has(code) && !covered.has(code))
    assert.deepEqual(missing, [])
  })
})

describe('valid DAG fixtures', () => {
  it('there are enough of them', () => {
    assert.ok(validNames.length >= 16, `only ${validNames.length} valid fixtures`)
  })

  for (const name of validNames) {
    it(name, () => {
      const result = validateSource(name, readFileSync(new URL(name, validDir)))
      assert.deepEqual(result.diagnostics.map((d) => `${key(d)} ${d.message}`), [])
      assert.equal(result.ok, true)
      assert.notEqual(result.value, undefined)
    })
  }

  it('together use every key of the DAG schema, for the DAG and for tasks', () => {
    const schema = JSON.parse(readFileSync(new URL('../../schemas/dag.schema.json', import.meta.url), 'utf8')) as {
      properties: Record<string, unknown>
      $defs: { task: { properties: Record<string, unknown> }; taskDefaults: { properties: Record<string, unknown> }; paramDefinition: { properties: Record<string, unknown> } }
    }
    const docs = validNames
      .map((name) => validateSource(name, readFileSync(new URL(name, validDir))))
      .filter((r) => r.kind === 'dag')
      .map((r) => r.value!)
    const used = { top: new Set<string>(), task: new Set<string>(), defaults: new Set<string>(), param: new Set<string>() }
    const keysOf = (value: Json | undefined): string[] => (value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value) : [])
    for (const doc of docs) {
      for (const k of Object.keys(doc)) used.top.add(k)
      for (const k of keysOf(doc.defaults)) used.defaults.add(k)
      for (const task of Object.values(doc.tasks as { [key: string]: Json })) for (const k of keysOf(task)) used.task.add(k)
      for (const definition of Object.values((doc.params ?? {}) as { [key: string]: Json })) for (const k of keysOf(definition)) used.param.add(k)
    }
    const unused = (all: Record<string, unknown>, seen: Set<string>): string[] => Object.keys(all).filter((k) => !seen.has(k))
    assert.deepEqual(unused(schema.properties, used.top), [], 'top-level keys no valid fixture uses')
    assert.deepEqual(unused(schema.$defs.task.properties, used.task), [], 'task keys no valid fixture uses')
    assert.deepEqual(unused(schema.$defs.taskDefaults.properties, used.defaults), [], 'defaults keys no valid fixture uses')
    assert.deepEqual(unused(schema.$defs.paramDefinition.properties, used.param), [], 'param definition keys no valid fixture uses')
  })

  it('together use every operator, schedule preset, catchup mode and trigger rule', () => {
    const values = validNames.map((name) => validateSource(name, readFileSync(new URL(name, validDir))).value!)
    const dags = values.filter((v) => !Object.hasOwn(v, 'feature_view'))
    const tasks = dags.flatMap((d) => Object.values(d.tasks as { [key: string]: { [key: string]: Json } }))
    const schema = JSON.parse(readFileSync(new URL('../../schemas/dag.schema.json', import.meta.url), 'utf8')) as { $defs: { triggerRule: { enum: string[] } } }
    const missing = (wanted: readonly string[], seen: readonly Json[]): string[] => wanted.filter((w) => !seen.includes(w))
    const operators = Object.keys(OPERATORS)
    assert.deepEqual(missing(operators, tasks.map((t) => t.operator!)), [])
    assert.deepEqual(missing(schema.$defs.triggerRule.enum, tasks.map((t) => t.trigger_rule ?? null)), [])
    assert.deepEqual(missing(['@hourly', '@daily', '@weekly', '@monthly', '@yearly', '@once'], dags.map((d) => d.schedule ?? null)), [])
    assert.ok(dags.some((d) => typeof d.schedule === 'string' && !d.schedule.startsWith('@')), 'a cron expression')
    assert.deepEqual(missing(['none', 'latest', 'all'], dags.map((d) => d.catchup ?? null)), [])
    assert.ok(values.some((v) => Object.hasOwn(v, 'feature_view')), 'a feature view')
    const text = validNames.map((name) => readFileSync(new URL(name, validDir), 'utf8')).join('\n')
    for (const variable of ['dag.id', 'run.id', 'run.logical_date', 'run.data_interval_start', 'run.data_interval_end', 'run.is_latest', 'task.id', 'task.attempt', 'ds', 'ds_nodash', 'params.', 'tasks.', 'secrets.']) {
      assert.ok(new RegExp(`\\{\\{[^}]*\\b${variable.replace('.', '\\.')}`).test(text), `no template uses ${variable}`)
    }
  })
})
