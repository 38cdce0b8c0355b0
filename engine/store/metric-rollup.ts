/**
 * The counts behind /metrics, kept on write by triggers (migration 0010): cairn.metric_rollup holds the
 * folded totals, cairn.metric_delta what changed since. Reading costs O(series + recent changes), never
 * O(history); folding moves the deltas into the rollup, one process at a time.
 */
import type { Queryable } from './queryable.ts'

export type MetricKind = 'run' | 'task_instance' | 'duration'

export interface MetricCount {
  kind: MetricKind
  dag_id: string
  task_id: string
  state: string
  /** Histogram bucket upper bound (kind 'duration'; Infinity for +Inf), 0 otherwise. */
  le: number
  n: number
  /** Sum of durations in seconds (kind 'duration'). */
  total: number
}

/** pg_try_advisory_xact_lock key: "cairnmet" in ASCII. */
const FOLD_LOCK_KEY = '7161120822695650676'

/** Rollup plus pending deltas, summed per series; series whose count fell to zero are left out. */
export async function readMetricCounts(q: Queryable): Promise<MetricCount[]> {
  const { rows } = await q.query<{ kind: MetricKind; dag_id: string; task_id: string; state: string; le: number; n: string; total: number }>(
    `SELECT kind, dag_id, task_id, state, le, sum(n)::text AS n, sum(total)::float8 AS total
       FROM (SELECT kind, dag_id, task_id, state, le, n, total FROM cairn.metric_rollup
             UNION ALL
             SELECT kind, dag_id, task_id, state, le, n, total FROM cairn.metric_delta) s
      GROUP BY 1, 2, 3, 4, 5
     HAVING sum(n) <> 0`,
  )
  return rows.map((r) => ({ ...r, n: Number(r.n) }))
}

/**
 * Moves the deltas into the rollup in one transaction (the caller's `q` must be inside one). Returns the
 * number of deltas folded, or null when another process is folding right now.
 */
export async function foldMetricDeltas(q: Queryable): Promise<number | null> {
  const { rows: lock } = await q.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1::bigint) AS locked', [FOLD_LOCK_KEY])
  if (!lock[0]!.locked) return null
  const { rows } = await q.query<{ folded: string }>(
    `WITH moved AS (DELETE FROM cairn.metric_delta RETURNING kind, dag_id, task_id, state, le, n, total),
          summed AS (SELECT kind, dag_id, task_id, state, le, sum(n) AS n, sum(total) AS total FROM moved GROUP BY 1, 2, 3, 4, 5),
          upserted AS (
            INSERT INTO cairn.metric_rollup AS r (kind, dag_id, task_id, state, le, n, total)
            SELECT kind, dag_id, task_id, state, le, n, total FROM summed
            ON CONFLICT (kind, dag_id, task_id, state, le) DO UPDATE SET n = r.n + excluded.n, total = r.total + excluded.total
            RETURNING 1)
     SELECT (SELECT count(*) FROM moved)::text AS folded, (SELECT count(*) FROM upserted) AS upserted`,
  )
  // Gauges that fell to zero (a finished run's states moved on) are not series any more.
  await q.query(`DELETE FROM cairn.metric_rollup WHERE n = 0 AND kind <> 'duration'`)
  return Number(rows[0]!.folded)
}
