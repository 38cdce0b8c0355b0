/** Task logs: every line of every attempt, stored durably; read back by position for `logs --follow`. */
import type { Queryable } from './queryable.ts'

export type LogStream = 'stdout' | 'stderr' | 'log'

export interface LogLine {
  id: number
  stream: LogStream
  line: string
  at: Date
}

export async function appendLogs(q: Queryable, at: { runId: string; taskId: string; attempt: number }, lines: readonly { stream: LogStream; line: string; at: Date }[]): Promise<void> {
  if (lines.length === 0) return
  await q.query(
    `INSERT INTO cairn.task_log (run_id, task_id, attempt, stream, line, at)
     SELECT $1, $2, $3, l.stream, l.line, l.at FROM unnest($4::text[], $5::text[], $6::timestamptz[]) AS l(stream, line, at)`,
    [at.runId, at.taskId, at.attempt, lines.map((l) => l.stream), lines.map((l) => l.line), lines.map((l) => l.at)],
  )
  await q.query('SELECT pg_notify($1, $2)', ['cairn_log', `${at.runId}\t${at.taskId}\t${at.attempt}`])
}

/** Lines after `afterId` (0: from the start), oldest first. */
export async function readLogs(q: Queryable, at: { runId: string; taskId: string; attempt: number }, afterId = 0, limit = 10_000): Promise<LogLine[]> {
  const { rows } = await q.query<{ id: string; stream: LogStream; line: string; at: Date }>(
    'SELECT id, stream, line, at FROM cairn.task_log WHERE run_id = $1 AND task_id = $2 AND attempt = $3 AND id > $4 ORDER BY id LIMIT $5',
    [at.runId, at.taskId, at.attempt, afterId, limit],
  )
  return rows.map((r) => ({ id: Number(r.id), stream: r.stream, line: r.line, at: r.at }))
}
