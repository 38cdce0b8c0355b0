/**
 * pg-boss's job table stays bounded: the task queue deletes finished jobs a day after they finish
 * (and jobs never fetched after 14 days), also when the queue was created without those settings.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PgBoss } from 'pg-boss'
import { BOSS_SCHEMA, QUEUE_RETENTION, TASK_QUEUE, startBoss } from '../../engine/queue/task-queue.ts'
import { createDb } from '../../engine/store/db.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'

test('finished queue jobs are deleted after a day; an unbounded existing queue is bounded at start', async (t) => {
  const url = await createTestDatabase(t)
  // A queue as an older or hand-made setup may have it: deletion off.
  const raw = new PgBoss({ connectionString: url, schema: BOSS_SCHEMA, supervise: false, schedule: false } as ConstructorParameters<typeof PgBoss>[0])
  raw.on('error', () => {})
  await raw.start()
  await raw.createQueue(TASK_QUEUE, { retryLimit: 0, deleteAfterSeconds: 0 } as never)
  await raw.stop({ graceful: false, close: true })

  const boss = await startBoss({ url, log: testLogger() })
  t.after(() => boss.stop({ graceful: false, close: true }))
  const queue = (await boss.getQueue(TASK_QUEUE)) as unknown as { deleteAfterSeconds: number; retentionSeconds: number }
  assert.equal(queue.deleteAfterSeconds, QUEUE_RETENTION.deleteAfterSeconds)
  assert.equal(queue.retentionSeconds, QUEUE_RETENTION.retentionSeconds)

  const db = createDb(url, { log: testLogger(), max: 2 })
  t.after(() => db.close())
  const done = await boss.send(TASK_QUEUE, { runId: 'r', taskId: 'a', attempt: 1 })
  const recent = await boss.send(TASK_QUEUE, { runId: 'r', taskId: 'b', attempt: 1 })
  const waiting = await boss.send(TASK_QUEUE, { runId: 'r', taskId: 'c', attempt: 1 })
  for (const id of [done, recent]) {
    const [job] = await boss.fetch(TASK_QUEUE, { id: id! } as never)
    await boss.complete(TASK_QUEUE, (job as { id: string } | undefined)?.id ?? id!)
  }
  // One job finished two days ago; make maintenance due now.
  await db.query(`UPDATE ${BOSS_SCHEMA}.job SET completed_on = completed_on - interval '2 days' WHERE id = $1`, [done])
  await db.query(`UPDATE ${BOSS_SCHEMA}.queue SET maintain_on = NULL WHERE name = $1`, [TASK_QUEUE])
  await boss.supervise(TASK_QUEUE)
  const { rows } = await db.query<{ id: string; state: string }>(`SELECT id, state FROM ${BOSS_SCHEMA}.job WHERE name = $1 ORDER BY created_on`, [TASK_QUEUE])
  assert.deepEqual(rows.map((r) => r.id).sort(), [recent!, waiting!].sort())
})
