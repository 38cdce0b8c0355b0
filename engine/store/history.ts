/**
 * The append-only state history of runs and task instances. State changes write their rows
 * themselves (transitions.ts); appendHistory is for the rows that are not a change between two
 * states, such as a run's creation.
 */
import type { Queryable } from './queryable.ts'

export interface HistoryEntry {
  runId: string
  taskId: string | null
  attempt: number | null
  from: string | null
  to: string
  reason: string
  /** The user (or API token) who made the change; null for the engine. */
  actor?: string | null
}

export async function appendHistory(q: Queryable, entries: readonly HistoryEntry[]): Promise<void> {
  if (entries.length === 0) return
  await q.query(
    `INSERT INTO cairn.state_history (run_id, task_id, attempt, from_state, to_state, reason, actor)
     SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[])`,
    [
      entries.map((e) => e.runId),
      entries.map((e) => e.taskId),
      entries.map((e) => e.attempt),
      entries.map((e) => e.from),
      entries.map((e) => e.to),
      entries.map((e) => e.reason),
      entries.map((e) => e.actor ?? null),
    ],
  )
}

export async function readHistory(q: Queryable, runId: string): Promise<(HistoryEntry & { at: Date })[]> {
  const { rows } = await q.query<{ task_id: string | null; attempt: number | null; from_state: string | null; to_state: string; reason: string; actor: string | null; at: Date }>(
    'SELECT task_id, attempt, from_state, to_state, reason, actor, at FROM cairn.state_history WHERE run_id = $1 ORDER BY id',
    [runId],
  )
  return rows.map((r) => ({ runId, taskId: r.task_id, attempt: r.attempt, from: r.from_state, to: r.to_state, reason: r.reason, actor: r.actor, at: r.at }))
}
