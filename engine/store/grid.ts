/** The states of every task instance of a page of runs, in one query (the DAG page's grid). */
import type { TaskState } from '../state/states.ts'
import type { Queryable } from './queryable.ts'

export interface GridCell {
  runId: string
  taskId: string
  state: TaskState
  attempt: number
}

export async function taskStatesOfRuns(q: Queryable, runIds: readonly string[]): Promise<GridCell[]> {
  if (runIds.length === 0) return []
  const { rows } = await q.query<{ run_id: string; task_id: string; state: TaskState; attempt: number }>(
    'SELECT run_id, task_id, state, attempt FROM cairn.task_instance WHERE run_id = ANY($1::text[])',
    [runIds],
  )
  return rows.map((r) => ({ runId: r.run_id, taskId: r.task_id, state: r.state, attempt: r.attempt }))
}

export interface RecentRun {
  dagId: string
  runId: string
  state: string
  logicalDate: Date
}

/** The newest `perDag` runs of every DAG, in one query (the DAG list's marks). */
export async function recentRunsByDag(q: Queryable, perDag: number): Promise<RecentRun[]> {
  const { rows } = await q.query<{ dag_id: string; run_id: string; state: string; logical_date: Date }>(
    `SELECT d.dag_id, r.run_id, r.state, r.logical_date
       FROM cairn.dag d
       CROSS JOIN LATERAL (SELECT run_id, state, logical_date FROM cairn.run
                            WHERE dag_id = d.dag_id ORDER BY queued_at DESC, run_id DESC LIMIT $1) r
      WHERE NOT d.removed`,
    [perDag],
  )
  return rows.map((r) => ({ dagId: r.dag_id, runId: r.run_id, state: r.state, logicalDate: r.logical_date }))
}
