/**
 * Two upstream tasks that finish at the same moment: each result is recorded and the run advanced
 * under the run's row lock, in one transaction per result. The transaction that waited for the lock
 * must decide from what the other committed meanwhile, or the join below them is left pending
 * until the scheduler's 10 s safety sweep (seen end to end as a join starting ~9 s late).
 *
 * The interleaving is forced with two transactions held open by hand, so it is deterministic.
 * Both ways into a run are covered: advanceRun (scheduler, trigger) and advanceAfterTask (worker).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { PoolClient } from 'pg'
import { startTestEngine } from '../helpers/engine.ts'
import { waitFor } from '../helpers/run-rows.ts'
import { claimAttempt, finishAttempt } from '../../engine/store/attempts.ts'
import { advanceAfterTask, advanceRun } from '../../engine/store/advance.ts'
import type { AdvanceContext } from '../../engine/store/advance.ts'
import { getDagVersion } from '../../engine/store/dags.ts'
import type { Queryable } from '../../engine/store/queryable.ts'

const ADVANCE: Record<string, (q: Queryable, ctx: AdvanceContext, runId: string, taskId: string) => Promise<unknown>> = {
  advanceRun: (q, ctx, runId) => advanceRun(q, ctx, runId),
  advanceAfterTask: (q, ctx, runId, taskId) => advanceAfterTask(q, ctx, runId, taskId),
}

for (const [name, advance] of Object.entries(ADVANCE)) {
  test(`${name}: a transaction that waited for the run lock sees what the lock holder committed`, async (t) => {
    const engine = await startTestEngine(t, {
      dags: {
        'join.yaml': `dag: join
tasks:
  a: { operator: noop }
  b: { operator: noop }
  c: { operator: noop, depends_on: [a, b] }
`,
      },
    })
    const runId = await engine.trigger('join')
    await waitFor('a and b queued', async () => {
      const states = await engine.taskStates(runId)
      return states.a === 'queued' && states.b === 'queued' ? true : undefined
    })
    // From here on only this test moves the run.
    await engine.scheduler!.stop()

    const now = () => new Date()
    const ctx = { boss: engine.boss, now }
    const claimA = (await claimAttempt(engine.db, { runId, taskId: 'a', attempt: 1 }, 'test-worker-a', now()))!
    const claimB = (await claimAttempt(engine.db, { runId, taskId: 'b', attempt: 1 }, 'test-worker-b', now()))!
    const spec = await getDagVersion(engine.db, claimA.versionId)
    const task = (id: string) => spec.tasks.find((x) => x.id === id)!

    // Released before the engine's own teardown, which waits for every pooled connection.
    const clientA = await engine.db.pool.connect()
    const clientB = await engine.db.pool.connect()
    try {
      const qA = asQueryable(clientA)
      const qB = asQueryable(clientB)
      const pidB = (await clientB.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
      await clientA.query('BEGIN')
      await clientB.query('BEGIN')
      assert.ok(await finishAttempt(qA, claimA.claimId, task('a'), { kind: 'success', outputs: {} }, now()))
      await advance(qA, ctx, runId, 'a') // holds the run's lock until COMMIT
      assert.ok(await finishAttempt(qB, claimB.claimId, task('b'), { kind: 'success', outputs: {} }, now()))
      const advancingB = advance(qB, ctx, runId, 'b')
      await waitFor('b to wait for the run lock', async () => {
        const { rows } = await engine.db.query<{ waiting: boolean }>(`SELECT wait_event_type = 'Lock' AS waiting FROM pg_stat_activity WHERE pid = $1`, [pidB])
        return rows[0]?.waiting ? true : undefined
      })
      await clientA.query('COMMIT')
      await advancingB
      await clientB.query('COMMIT')
    } finally {
      await clientA.query('ROLLBACK').catch(() => undefined)
      await clientB.query('ROLLBACK').catch(() => undefined)
      clientA.release()
      clientB.release()
    }

    assert.deepEqual(await engine.taskStates(runId), { a: 'success', b: 'success', c: 'queued' })
  })
}

function asQueryable(client: PoolClient): Queryable {
  return { query: (text, values) => client.query(text, values) }
}
