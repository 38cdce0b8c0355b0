/**
 * Shortcuts the validator takes for common, plainly valid input must never accept what the full
 * check refuses: simple run parameter definitions (against Ajv), plain cron expressions (against
 * cron-parser), calendar dates (against luxon) and the validator's task graph (against graphology).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { CronExpressionParser } from 'cron-parser'
import { compileParam, isPlainlyValid } from '../../engine/dag/run-params.ts'
import { parseSchedule, plainlyValidCron } from '../../engine/time/schedule.ts'
import { isRealCalendarDate, isValidTimezone } from '../../engine/time/dates.ts'
import { DateTime } from 'luxon'
import { buildTaskGraph, descendantsOf, findCycles, lightGraph } from '../../engine/graph/task-graph.ts'

const scalar = fc.oneof(fc.string({ maxLength: 6 }), fc.integer({ min: -5, max: 105 }), fc.double({ min: -5, max: 105, noNaN: true }), fc.boolean(), fc.constant(null))
const KEYS = ['description', 'default', 'enum', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'pattern', 'format', 'items'] as const
const values = fc.record({
  description: fc.oneof(fc.string({ maxLength: 5 }), fc.integer()),
  default: fc.oneof(scalar, scalar, scalar, fc.constant([]), fc.constant({})),
  enum: fc.oneof(fc.array(scalar, { minLength: 1, maxLength: 4 }), fc.constant([]), fc.constant('x')),
  minimum: fc.oneof(fc.integer({ min: -5, max: 105 }), fc.constant('0')),
  maximum: fc.integer({ min: -5, max: 105 }),
  exclusiveMinimum: fc.double({ min: -5, max: 105, noNaN: true }),
  exclusiveMaximum: fc.integer({ min: -5, max: 105 }),
  minLength: fc.oneof(fc.integer({ min: -1, max: 4 }), fc.constant(1.5)),
  maxLength: fc.integer({ min: 0, max: 6 }),
  pattern: fc.constantFrom('^a', '[', 'b$', '^\\p{L}+$', '\\d', '(?<x>a)', '^.{2}$'),
  format: fc.constantFrom('date', 'uri'),
  items: fc.constant({ type: 'string' }),
})
const definition = fc
  .tuple(fc.constantFrom('string', 'number', 'integer', 'boolean', 'array', 'str', 5), fc.subarray([...KEYS], { maxLength: 3 }), values)
  .map(([type, keys, all]) => ({ type, ...Object.fromEntries(keys.map((k) => [k, all[k]])) }) as Record<string, unknown>)

test('a parameter definition plainlyValid calls valid compiles in Ajv, and Ajv accepts its default', () => {
  let shortcuts = 0
  fc.assert(
    fc.property(definition, (def) => {
      if (!isPlainlyValid(def)) return
      shortcuts++
      const validate = compileParam(def)
      assert.equal(typeof validate, 'function', `Ajv refuses ${JSON.stringify(def)}: ${String(validate)}`)
      if (Object.hasOwn(def, 'default') && typeof validate === 'function') assert.ok(validate(def.default), `Ajv refuses the default of ${JSON.stringify(def)}`)
    }),
    { numRuns: 5000 },
  )
  assert.ok(shortcuts > 100, `the property exercised the shortcut (${shortcuts} times)`)
})

test('the definitions DAGs usually declare take the shortcut', () => {
  for (const def of [
    { type: 'number', default: 0.8, minimum: 0, maximum: 1 },
    { type: 'string', default: 'churned' },
    { type: 'integer', minimum: 1, default: 2, description: 'how many' },
    { type: 'string', enum: ['a', 'b'], default: 'b' },
    { type: 'boolean', default: false },
    { type: 'string', default: 'abc', minLength: 1, maxLength: 5 },
  ]) {
    assert.ok(isPlainlyValid(def), JSON.stringify(def))
  }
  assert.equal(isPlainlyValid({ type: 'integer', default: 2.5 }), false)
  assert.equal(isPlainlyValid({ type: 'string', minimum: 1 }), false)
  assert.equal(isPlainlyValid({ type: 'string', default: 'abcdef', maxLength: 5 }), false)
  assert.equal(isPlainlyValid({ type: 'string', pattern: '^[a-z]+$', default: 'abc' }), false, 'patterns are compileParam’s')
  assert.equal(isPlainlyValid({ type: 'string', default: '😀😀', maxLength: 2 }), true, 'lengths count code points, as Ajv does')
})

const cronPart = fc.oneof(
  { arbitrary: fc.constant('*'), weight: 3 },
  { arbitrary: fc.integer({ min: 0, max: 62 }).map(String), weight: 4 },
  { arbitrary: fc.constantFrom('00', '07', '+1', '-1', '', 'L', 'MON', 'JAN', '?', '1#2', '5W', '7'), weight: 1 },
  { arbitrary: fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 40 })).map(([a, b]) => `${a}-${b}`), weight: 2 },
  { arbitrary: fc.tuple(fc.constantFrom('*', '0-30', '5', '1-3', '40-2', '1-12'), fc.integer({ min: 0, max: 70 })).map(([a, n]) => `${a}/${n}`), weight: 2 },
)
const cronField = fc.oneof(
  { arbitrary: cronPart, weight: 5 },
  { arbitrary: fc.array(cronPart, { minLength: 2, maxLength: 3 }).map((parts) => parts.join(',')), weight: 1 },
)

test('a cron expression plainlyValidCron accepts is one cron-parser accepts', () => {
  let shortcuts = 0
  fc.assert(
    fc.property(fc.array(cronField, { minLength: 5, maxLength: 5 }), (fields) => {
      if (!plainlyValidCron(fields)) return
      shortcuts++
      assert.doesNotThrow(() => CronExpressionParser.parse(fields.join(' '), { tz: 'UTC' }), fields.join(' '))
    }),
    { numRuns: 20_000 },
  )
  assert.ok(shortcuts > 100, `the property exercised the shortcut (${shortcuts} times)`)
  assert.ok(plainlyValidCron('*/15 9-17 * * 1-5'.split(' ')))
  assert.equal(parseSchedule('0 0 30 2 *').ok, false, 'a day that never comes is still cron-parser’s to refuse')
  assert.equal(parseSchedule('61 * * * *').ok, false)
})

test('isRealCalendarDate agrees with luxon on every YYYY-MM-DD it answers', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), (year, month, day) => {
      const text = `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`
      const real = isRealCalendarDate(text)
      if (real === undefined) return
      assert.equal(real, DateTime.fromISO(text, { zone: 'Europe/Berlin', setZone: true }).isValid, text)
    }),
    { numRuns: 20_000 },
  )
  assert.equal(isRealCalendarDate('2024-02-29'), true)
  assert.equal(isRealCalendarDate('2100-02-29'), false)
  assert.equal(isRealCalendarDate('2026-01-01T00:00'), undefined)
  assert.equal(isValidTimezone('Europe/Berlin') && isValidTimezone('UTC') && isValidTimezone('US/Eastern'), true)
  assert.equal(isValidTimezone('Mars/Olympus_Mons'), false)
})

test('lightGraph finds a cycle exactly when findCycles does, and the same descendants', () => {
  const ids = ['a', 'b', 'c', 'd', 'e', 'f']
  const tasks = fc.uniqueArray(fc.constantFrom(...ids), { minLength: 1, maxLength: 6 }).chain((present) =>
    fc.tuple(...present.map((id) => fc.array(fc.constantFrom(...ids, 'zz'), { maxLength: 4 }).map((dependsOn) => ({ id, dependsOn })))),
  )
  fc.assert(
    fc.property(tasks, (nodes) => {
      const light = lightGraph(nodes)
      const graph = buildTaskGraph(nodes)
      assert.equal(light.acyclic, findCycles(graph, nodes.map((n) => n.id)).length === 0, JSON.stringify(nodes))
      for (const { id } of nodes) assert.deepEqual([...light.descendants(id)].sort(), [...descendantsOf(graph, id)].sort(), `${id} in ${JSON.stringify(nodes)}`)
    }),
    { numRuns: 5000 },
  )
})
