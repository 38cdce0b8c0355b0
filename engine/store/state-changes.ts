/**
 * Reads for live views: state changes after a history id, and a signature of everything the DAG list
 * shows besides runs (DAGs, their paused flags and versions, import errors).
 */
import type { Queryable } from './queryable.ts'

export interface StateChange {
  id: number
  runId: string
  dagId: string
  /** null: the run's own state changed */
  taskId: string | null
  state: string
}

export async function latestHistoryId(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ id: string | null }>('SELECT max(id)::text AS id FROM cairn.state_history')
  return Number(rows[0]?.id ?? 0)
}

export async function stateChangesAfter(q: Queryable, afterId: number, limit: number): Promise<StateChange[]> {
  const { rows } = await q.query<{ id: string; run_id: string; dag_id: string; task_id: string | null; to_state: string }>(
    `SELECT h.id::text AS id, h.run_id, r.dag_id, h.task_id, h.to_state
       FROM cairn.state_history h JOIN cairn.run r USING (run_id)
      WHERE h.id > $1 ORDER BY h.id LIMIT $2`,
    [afterId, limit],
  )
  return rows.map((r) => ({ id: Number(r.id), runId: r.run_id, dagId: r.dag_id, taskId: r.task_id, state: r.to_state }))
}

export async function dagListSignature(q: Queryable): Promise<string> {
  const { rows } = await q.query<{ signature: string | null }>(
    `SELECT md5(coalesce((SELECT string_agg(concat_ws(':', dag_id, paused, version_id, removed), ',' ORDER BY dag_id) FROM cairn.dag), '')
             || '|' || (SELECT concat_ws(':', count(*), max(updated_at)) FROM cairn.import_error)) AS signature`,
  )
  return rows[0]?.signature ?? ''
}
