/** How many task jobs of the default queue wait in pg-boss, not yet fetched by a worker: O(backlog), never O(history). Tasks of other queues count in the queued task instances. */
import type { Queryable } from '../store/queryable.ts'
import { BOSS_SCHEMA, TASK_QUEUE } from './task-queue.ts'

/** Undefined while pg-boss has not created its schema yet (a web process may start first). */
export async function countWaitingJobs(q: Queryable): Promise<number | undefined> {
  try {
    const { rows } = await q.query<{ n: string }>(`SELECT count(*) AS n FROM ${BOSS_SCHEMA}.job WHERE name = $1 AND state = 'created'`, [TASK_QUEUE])
    return Number(rows[0]!.n)
  } catch (error) {
    const code = (error as { code?: unknown }).code
    if (code === '42P01' || code === '3F000') return undefined
    throw error
  }
}
