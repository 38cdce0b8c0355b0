import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { startTestEngine } from '../helpers/engine.ts'
import type { TestEngine } from '../helpers/engine.ts'
import { illegalHistory } from '../helpers/run-rows.ts'

const DAG = `dag: slow
tasks:
  nap:
    operator: shell
    params: { command: [sleep, "SECONDS"] }
`

async function waitUntilRunning(engine: TestEngine, runId: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const { rows } = await engine.db.query(`SELECT 1 FROM cairn.task_instance WHERE run_id = $1 AND state = 'running'`, [runId])
    if (rows.length > 0) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('task never started')
}

const exited = (child: ChildProcess): Promise<number | null> => new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))))

test('SIGTERM lets a running task finish within the grace period, then the worker exits', async (t) => {
  const engine = await startTestEngine(t, { dags: { 'slow.yaml': DAG.replace('SECONDS', '1') } })
  const worker = engine.spawnWorker({ args: ['--grace', '20'] })
  const runId = await engine.trigger('slow')
  await waitUntilRunning(engine, runId)
  const stopped = Date.now()
  worker.kill('SIGTERM')
  assert.equal(await exited(worker), 0)
  assert.ok(Date.now() - stopped < 15_000)
  assert.equal(await engine.waitForRun(runId, 5000), 'success')
  const attempts = await engine.db.query<{ attempt: number; state: string }>('SELECT attempt, state FROM cairn.attempt WHERE run_id = $1', [runId])
  assert.deepEqual(attempts.rows, [{ attempt: 1, state: 'success' }])
})

test('past the grace period the attempt is stopped and handed back, without using a retry', async (t) => {
  const engine = await startTestEngine(t, { dags: { 'slow.yaml': DAG.replace('SECONDS', '4') } })
  const first = engine.spawnWorker({ args: ['--grace', '0.5'] })
  const runId = await engine.trigger('slow')
  await waitUntilRunning(engine, runId)
  first.kill('SIGTERM')
  assert.equal(await exited(first), 0)
  const handedBack = await engine.db.query<{ state: string; attempt: number; failures: number }>('SELECT state, attempt, failures FROM cairn.task_instance WHERE run_id = $1', [runId])
  assert.deepEqual(handedBack.rows, [{ state: 'queued', attempt: 1, failures: 0 }])
  engine.spawnWorker()
  assert.equal(await engine.waitForRun(runId, 30_000), 'success')
  const history = await engine.db.query<{ to_state: string }>(`SELECT to_state FROM cairn.state_history WHERE run_id = $1 AND task_id = 'nap' ORDER BY id`, [runId])
  assert.deepEqual(history.rows.map((r) => r.to_state), ['queued', 'running', 'queued', 'running', 'success'])
  // The hand-back (running -> queued, same attempt) is a transition the table allows.
  assert.deepEqual(await illegalHistory(engine.db, runId), [])
})
