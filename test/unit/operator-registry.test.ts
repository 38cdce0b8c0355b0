import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { OPERATORS } from '../../operators/index.ts'

const schemaDir = new URL('../../schemas/', import.meta.url)

test('every registered operator has its params schema file, and every schema file an operator', () => {
  const files = readdirSync(new URL('operators/', schemaDir)).filter((f) => f.endsWith('.params.schema.json'))
  assert.deepEqual(files.map((f) => f.replace('.params.schema.json', '')).sort(), Object.keys(OPERATORS).sort())
  for (const operator of Object.values(OPERATORS)) {
    const onDisk = JSON.parse(readFileSync(new URL(`operators/${operator.type}.params.schema.json`, schemaDir), 'utf8')) as unknown
    assert.deepEqual(operator.paramsSchema, onDisk, `${operator.type}: registry schema differs from the file`)
  }
})

test('dag.schema.json routes every registered operator, and only those, to its params schema', () => {
  const dag = JSON.parse(readFileSync(new URL('dag.schema.json', schemaDir), 'utf8')) as {
    $defs: { task: { allOf: { if: { properties: { operator: { const: string } } }; then: { properties: { params: { $ref: string } } } }[] } }
  }
  const routes = dag.$defs.task.allOf.map((rule) => [rule.if.properties.operator.const, rule.then.properties.params.$ref] as const)
  assert.deepEqual(routes.map(([type]) => type).sort(), Object.keys(OPERATORS).sort())
  for (const [type, ref] of routes) assert.equal(ref, `operators/${type}.params.schema.json`)
})
