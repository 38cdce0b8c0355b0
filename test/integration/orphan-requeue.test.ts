import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestEngine } from '../helpers/engine.ts'
import { TASK_QUEUE } from '../../engine/queue/task-queue.ts'

test('an attempt whose queue job vanished (fetched by a worker that died before claiming) is queued again', async (t) => {
  const engine = await startTestEngine(t, { dags: { 'o.yaml': 'dag: o\ntasks:\n  a: { operator: noop }\n' }, scheduler: { lostAfterMs: 1000 } })
  const runId = await engine.trigger('o')
  // Let the scheduler queue the task, then take its job away as a dying worker would.
  for (let i = 0; i < 100; i++) {
    const { rows } = await engine.db.query(`SELECT 1 FROM cairn.attempt WHERE run_id = $1 AND state = 'queued'`, [runId])
    if (rows.length > 0) break
    await new Promise((r) => setTimeout(r, 50))
  }
  const fetched = await engine.boss.fetch(TASK_QUEUE, { batchSize: 10 })
  assert.equal(fetched.length, 1)
  engine.spawnWorker()
  assert.equal(await engine.waitForRun(runId, 30_000), 'success')
  const attempts = await engine.db.query<{ attempt: number; state: string }>('SELECT attempt, state FROM cairn.attempt WHERE run_id = $1', [runId])
  assert.deepEqual(attempts.rows, [{ attempt: 1, state: 'success' }])
})
