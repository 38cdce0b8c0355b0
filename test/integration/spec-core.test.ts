/**
 * SPEC sections 1-3 end to end, for sentences no other test pinned down: a DAG file loaded by the
 * scheduler, a run in Postgres, tasks executed by an in-process worker.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestEngine } from '../helpers/engine.ts'
import type { TestEngine } from '../helpers/engine.ts'
import { waitForDags } from '../helpers/run-rows.ts'
import { validateText } from '../../engine/dag/validate.ts'

const problems = (file: string, text: string): string[] =>
  validateText(file, text).diagnostics.map((d) => `${d.line}:${d.column} ${d.code}: ${d.message}`)

const NODE = JSON.stringify(process.execPath)
const PWNED = join(tmpdir(), `cairn-spec-core-pwned-${process.pid}`)
/** A run parameter that would run a command, end a quote or glob if it were spliced into shell text. */
const HOSTILE = `$(touch ${PWNED}) \`touch ${PWNED}\` "dq" 'sq' * ; touch ${PWNED} \\ $HOME`

const DAGS: Record<string, string> = {
  // SPEC section 1: max_active_runs defaults to 1, for manual runs too.
  'one_at_a_time.yaml': `dag: one_at_a_time
tasks:
  slow: { operator: shell, params: { command: [sleep, "1.5"] } }
`,
  // SPEC section 4: shell `script` runs by /bin/sh -e "with templated values passed as environment
  // variables, never spliced into the script text": a template may stand unquoted, in double or in
  // single quotes, and its value arrives as exactly one word, as written.
  'script_values.yaml': `dag: script_values
params:
  v: { type: string, default: "plain" }
tasks:
  echo:
    operator: shell
    params:
      script: |
        ${NODE} -e 'require("fs").writeFileSync(process.env.CAIRN_OUTPUTS, JSON.stringify({ args: process.argv.slice(1) }))' {{ params.v }} "<{{ params.v }}>" '[{{ params.v }}]' "{{ task.id }}"
`,

  // SPEC section 1: `when` renders falsy ("", false, 0, null) => task is skipped; YAML's own
  // false, 0 and null are those values, not only strings that render to them.
  'literal_when.yaml': `dag: literal_when
tasks:
  when_false: { operator: noop, when: false }
  when_zero: { operator: noop, when: 0 }
  when_null: { operator: noop, when: null }
  when_empty: { operator: noop, when: "" }
  when_one: { operator: noop, when: 1 }
  when_true: { operator: noop, when: true }
  when_text: { operator: noop, when: "yes" }
`,
}

const engine: TestEngine = await startTestEngine({ after }, { dags: DAGS, inProcessWorkers: 1 })
await waitForDags(engine.db, Object.keys(DAGS).map((f) => f.replace(/\.yaml$/, '')))

test('when: YAML false, 0 and null and "" skip the task; 1, true and other text run it', async () => {
  assert.deepEqual(problems('literal_when.yaml', DAGS['literal_when.yaml']!), [])
  const runId = await engine.trigger('literal_when')
  assert.equal(await engine.waitForRun(runId, 60_000), 'success')
  assert.deepEqual(await engine.taskStates(runId), {
    when_empty: 'skipped',
    when_false: 'skipped',
    when_null: 'skipped',
    when_one: 'success',
    when_text: 'success',
    when_true: 'success',
    when_zero: 'skipped',
  })
})

test('shell script: templated values reach the script as environment variables, never as script text', async () => {
  assert.deepEqual(problems('script_values.yaml', DAGS['script_values.yaml']!), [])
  const runId = await engine.trigger('script_values', { v: HOSTILE })
  assert.equal(await engine.waitForRun(runId, 60_000), 'success', JSON.stringify(await engine.taskStates(runId)))
  const { rows } = await engine.db.query<{ outputs: { args: string[] } }>(`SELECT outputs FROM cairn.task_instance WHERE run_id = $1 AND task_id = 'echo'`, [runId])
  assert.deepEqual(rows[0]!.outputs.args, [HOSTILE, `<${HOSTILE}>`, `[${HOSTILE}]`, 'echo'])
  assert.equal(existsSync(PWNED), false, 'a value ran as a command')
})

test('max_active_runs defaults to 1: a second manual run stays queued until the first has ended', async () => {
  const first = await engine.trigger('one_at_a_time')
  const second = await engine.trigger('one_at_a_time')
  assert.equal(await engine.waitForRun(first, 60_000), 'success')
  assert.equal(await engine.waitForRun(second, 60_000), 'success')
  const { rows } = await engine.db.query<{ run_id: string; started_at: Date; ended_at: Date }>(
    'SELECT run_id, started_at, ended_at FROM cairn.run WHERE run_id = ANY($1::text[])',
    [[first, second]],
  )
  const byId = new Map(rows.map((r) => [r.run_id, r]))
  const [a, b] = [byId.get(first)!, byId.get(second)!].sort((x, y) => x.started_at.getTime() - y.started_at.getTime())
  assert.ok(b!.started_at.getTime() >= a!.ended_at.getTime(), `the runs overlapped: ${JSON.stringify(rows)}`)
})
