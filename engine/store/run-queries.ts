/** Small reads the CLI needs to follow one task instance and its attempts (`cairn logs --follow`). */
import type { AttemptState, TaskState } from '../state/states.ts'
import type { Queryable } from './queryable.ts'

export type { AttemptState }

export interface TaskInstanceStatus {
  state: TaskState
  /** Number of the latest attempt; 0 before the first one. */
  attempt: number
}

export async function getTaskInstanceStatus(q: Queryable, runId: string, taskId: string): Promise<TaskInstanceStatus | undefined> {
  const { rows } = await q.query<{ state: TaskState; attempt: number }>('SELECT state, attempt FROM cairn.task_instance WHERE run_id = $1 AND task_id = $2', [runId, taskId])
  return rows[0] ? { state: rows[0].state, attempt: rows[0].attempt } : undefined
}

export async function getAttemptState(q: Queryable, at: { runId: string; taskId: string; attempt: number }): Promise<AttemptState | undefined> {
  const { rows } = await q.query<{ state: AttemptState }>('SELECT state FROM cairn.attempt WHERE run_id = $1 AND task_id = $2 AND attempt = $3', [at.runId, at.taskId, at.attempt])
  return rows[0]?.state
}

export function isAttemptOver(state: AttemptState): boolean {
  return state !== 'queued' && state !== 'running'
}
