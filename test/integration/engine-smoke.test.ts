import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestEngine } from '../helpers/engine.ts'

test('a run goes from trigger to success through a real worker process, outputs flowing downstream', async (t) => {
  const engine = await startTestEngine(t, {
    dags: {
      'pipe.yaml': `dag: pipe
params:
  word: { type: string, default: hi }
tasks:
  produce:
    operator: shell
    env: { WORD: "{{ params.word }}" }
    params:
      script: |
        printf '{"word": "%s"}' "$WORD" > "$CAIRN_OUTPUTS"
  consume:
    operator: shell
    depends_on: produce
    params: { command: [sh, -c, 'test "$1" = "yo"', sh, "{{ tasks.produce.outputs.word }}"] }
  last: { operator: noop, depends_on: consume }
`,
    },
  })
  engine.spawnWorker()
  const runId = await engine.trigger('pipe', { word: 'yo' })
  assert.equal(await engine.waitForRun(runId), 'success')
  assert.deepEqual(await engine.taskStates(runId), { consume: 'success', last: 'success', produce: 'success' })
  const history = await engine.db.query<{ task_id: string | null; to_state: string }>('SELECT task_id, to_state FROM cairn.state_history WHERE run_id = $1 ORDER BY id', [runId])
  assert.deepEqual(
    history.rows.filter((r) => r.task_id === 'consume').map((r) => r.to_state),
    ['queued', 'running', 'success'],
  )
})
