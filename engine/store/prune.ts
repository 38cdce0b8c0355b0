/**
 * Retention: deletes finished runs older than a cut-off with everything that hangs off them (task
 * instances, attempts, log lines, state history), a batch of runs per transaction so no
 * transaction grows with the backlog and locks stay short. Runs that are queued or running are never
 * touched; a run is locked (SKIP LOCKED) and re-checked before it goes, so a run being cleared at
 * that moment is left alone.
 */
import { RUN_STATE_LIST, isTerminalRunState } from '../state/states.ts'
import type { Db } from './db.ts'
import type { Queryable } from './queryable.ts'

export interface PruneCounts {
  runs: number
  taskInstances: number
  attempts: number
  logLines: number
  historyRows: number
}

export interface PruneOptions {
  /** Finished runs that ended before this are deleted. */
  before: Date
  /** Runs per transaction. @default 500 */
  batchSize?: number
  /** Stop after the batch in progress (the scheduler stopping). */
  signal?: AbortSignal
}

const FINISHED = RUN_STATE_LIST.filter(isTerminalRunState)

const emptyCounts = (): PruneCounts => ({ runs: 0, taskInstances: 0, attempts: 0, logLines: 0, historyRows: 0 })

/** Deletes batch after batch until no finished run older than the cut-off is left; returns the totals and the number of batches. */
export async function pruneFinishedRuns(db: Db, options: PruneOptions): Promise<PruneCounts & { batches: number }> {
  const total = { ...emptyCounts(), batches: 0 }
  const batchSize = options.batchSize ?? 500
  for (;;) {
    if (options.signal?.aborted) break
    const batch = await db.tx((q) => pruneBatch(q, options.before, batchSize))
    if (batch.runs === 0) break
    total.batches++
    for (const key of Object.keys(batch) as (keyof PruneCounts)[]) total[key] += batch[key]
    if (batch.runs < batchSize) break
  }
  return total
}

/** One batch, in the caller's transaction. */
async function pruneBatch(q: Queryable, before: Date, batchSize: number): Promise<PruneCounts> {
  const { rows } = await q.query<{ run_id: string }>(
    `SELECT run_id FROM cairn.run
      WHERE state = ANY($1::text[]) AND coalesce(ended_at, queued_at) < $2
      ORDER BY coalesce(ended_at, queued_at) LIMIT $3 FOR UPDATE SKIP LOCKED`,
    [FINISHED, before, batchSize],
  )
  const ids = rows.map((r) => r.run_id)
  if (ids.length === 0) return emptyCounts()
  const count = async (sql: string): Promise<number> => (await q.query(sql, [ids])).rowCount ?? 0
  // Logs are stored in chunks of many lines (migration 0008); the count is of lines.
  const { rows: logs } = await q.query<{ lines: string | null }>(
    'WITH gone AS (DELETE FROM cairn.task_log_chunk WHERE run_id = ANY($1::text[]) RETURNING line_count) SELECT sum(line_count) AS lines FROM gone',
    [ids],
  )
  const logLines = Number(logs[0]?.lines ?? 0)
  const historyRows = await count('DELETE FROM cairn.state_history WHERE run_id = ANY($1::text[])')
  const attempts = await count('DELETE FROM cairn.attempt WHERE run_id = ANY($1::text[])')
  const taskInstances = await count('DELETE FROM cairn.task_instance WHERE run_id = ANY($1::text[])')
  const runs = await count('DELETE FROM cairn.run WHERE run_id = ANY($1::text[])')
  return { runs, taskInstances, attempts, logLines, historyRows }
}

/** Advisory lock key: one pruning scheduler at a time (any 64-bit number no other lock uses). */
export const PRUNE_LOCK = 0x636169726e5f7072n // "cairn_pr"

/**
 * Runs `pruneFinishedRuns` unless another process is pruning already (then returns undefined). The
 * lock is held on one pooled connection for the whole prune and released with it.
 */
export async function pruneFinishedRunsExclusively(db: Db, options: PruneOptions): Promise<(PruneCounts & { batches: number }) | undefined> {
  const client = await db.pool.connect()
  let locked = false
  try {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [PRUNE_LOCK.toString()])
    locked = rows[0]!.locked
    if (!locked) return undefined
    return await pruneFinishedRuns(db, options)
  } finally {
    if (locked) await client.query('SELECT pg_advisory_unlock($1::bigint)', [PRUNE_LOCK.toString()]).catch(() => undefined)
    client.release()
  }
}
