/** The validator's shortcut for plain `{{ a.b }}` templates gives exactly Liquid's analysis. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { analyzeWithLiquid, simpleAnalysis } from '../../engine/template/liquid.ts'

const PIECES = [
  '{{ ds }}', '{{ds}}', '{{  run.id   }}', '{{ params.x }}', '{{ tasks.t1.outputs.path }}', '{{ a.b.c.d }}', '{{ _x.y_1 }}', '{{ true }}', '{{ nil }}', '{{ empty.x }}',
  '{{ a-b }}', '{{ a[0] }}', '{{ ds | upcase }}', '{{- ds -}}', '{% if x %}', '{{', '}}', '{', '}', ' ', 'word', 'é', '😀', '\n', '\r\n', '\t', '{{ 5 }}', '{{ a.0 }}', '"', "'",
]
const texts = fc.array(fc.constantFrom(...PIECES), { maxLength: 12 }).map((parts) => parts.join(''))

test('simpleAnalysis, when it answers, answers what Liquid answers', () => {
  let answered = 0
  fc.assert(
    fc.property(texts, (text) => {
      const simple = simpleAnalysis(text)
      if (simple === undefined) return
      answered++
      assert.deepEqual(simple, analyzeWithLiquid(text), JSON.stringify(text))
    }),
    { numRuns: 20_000 },
  )
  assert.ok(answered > 500, `the shortcut answered ${answered} times`)
})

test('the templates DAGs usually hold take the shortcut; anything else goes to Liquid', () => {
  for (const text of ['{{ ds }}', 'gs://bucket/{{ ds_nodash }}/x.csv', '--input={{ tasks.extract.outputs.path }} {{ params.n }}', 'no template']) {
    assert.ok(simpleAnalysis(text), text)
  }
  for (const text of ['{{ ds }}'.repeat(10_000), '{{ ds | date: "%Y" }}', '{% raw %}{{ x }}{% endraw %}', '{{ x', '{{ true }}', '{{ a["b"] }}']) assert.equal(simpleAnalysis(text), undefined, text)
})
