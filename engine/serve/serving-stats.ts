/**
 * Serving figures per model version, summed over every server process (migration 0016): what a
 * canary rollout analyses at each step. Each server counts its answers in memory (createServingStats)
 * and writes them at least every 250 ms; readServingWindow adds up all servers' rows of a time window.
 *
 * What counts for a version (docs/serving.md):
 * - requests: every inference request routed to the version that was not refused as the client's
 *   own mistake; errors are among them;
 * - errors: answers the version failed to give: inference that threw, a 5xx, and a request routed by
 *   the traffic split that was valid for the production version's inputs but not for this version's
 *   (a canary with the wrong input shape fails real traffic: it must show errors);
 * - a request that no version could take (wrong tensor name for production too, bad JSON, data length
 *   not matching the shape it declares) is the client's error: counted in neither.
 *
 * Buckets are one second long and stamped with their start on the server's clock; a window
 * [since, until) includes every bucket that overlaps it, so it may take in up to a second before `since`.
 * Only this module's imports: it is loaded by the rollout operator, which must stay light.
 */
import type { Queryable } from '../store/queryable.ts'
import { LATENCY_BUCKETS, bucketOf, quantileMs } from './latency-buckets.ts'

export const BUCKET_MS = 1000
/** Each server writes its figures at least this often. */
export const FLUSH_MS = 250

export interface ServingWindow {
  requests: number
  errors: number
  /** errors / requests; 0 when there were no requests. */
  errorRate: number
  /** 99th percentile of the answers' latency (request received to answer sent, in the server), ms. */
  p99Ms: number | null
}

/** The figures of one version over [since, until) (until: now), summed over every server process. */
export async function readServingWindow(db: Queryable, model: string, version: number, since: Date, until?: Date): Promise<ServingWindow> {
  const end = until ?? new Date(8.64e15)
  const bounds = [model, version, new Date(since.getTime() - BUCKET_MS + 1), end]
  const where = `model = $1 AND version = $2 AND bucket >= $3 AND bucket < $4`
  const [totals, latencies] = await Promise.all([
    db.query<{ requests: string | null; errors: string | null }>(`SELECT sum(requests) AS requests, sum(errors) AS errors FROM cairn.serving_stats WHERE ${where}`, bounds),
    db.query<{ i: number; n: string }>(
      `SELECT u.i, sum(u.n) AS n FROM cairn.serving_stats s, unnest(s.latency_index, s.latency_count) AS u(i, n) WHERE ${where} GROUP BY u.i`,
      bounds,
    ),
  ])
  const requests = Number(totals.rows[0]?.requests ?? 0)
  const errors = Number(totals.rows[0]?.errors ?? 0)
  const counts = new Map(latencies.rows.map((r) => [r.i, Number(r.n)]))
  return { requests, errors, errorRate: requests === 0 ? 0 : errors / requests, p99Ms: quantileMs(counts, 0.99) }
}

interface Cell {
  model: string
  version: number
  bucket: number
  requests: number
  errors: number
  latencySumMs: number
  latency: Map<number, number>
}

export interface ServingStats {
  /** One answer of a version (latency in ms; `error`: the version failed to answer, see above). */
  record(model: string, version: number, latencyMs: number, error: boolean): void
  /** Writes what was counted since the last flush (also runs every FLUSH_MS once started). */
  flush(): Promise<void>
  start(): void
  /** Stops the timer and writes the rest. */
  stop(): Promise<void>
}

export interface ServingStatsOptions {
  db: Queryable
  serverId: string
  now?: () => number
  flushMs?: number
  /** Rows older than this are deleted by the servers now and then. @default 86400000 (a day) */
  keepMs?: number
  onError?: (error: unknown) => void
}

export function createServingStats(options: ServingStatsOptions): ServingStats {
  const now = options.now ?? Date.now
  const flushMs = options.flushMs ?? FLUSH_MS
  const keepMs = options.keepMs ?? 86_400_000
  let cells = new Map<string, Cell>()
  let timer: NodeJS.Timeout | undefined
  let flushing: Promise<void> | undefined
  let lastPrune = 0

  async function write(batch: Map<string, Cell>): Promise<void> {
    if (batch.size === 0) return
    const rows = [...batch.values()]
    await options.db.query(
      `INSERT INTO cairn.serving_stats (server_id, model, version, bucket, requests, errors, latency_sum_ms, latency_index, latency_count)
       SELECT $1, r.model, r.version, to_timestamp(r.bucket / 1000.0), r.requests, r.errors, r.sum_ms,
              ARRAY(SELECT (jsonb_array_elements(r.idx))::smallint), ARRAY(SELECT (jsonb_array_elements(r.cnt))::integer)
         FROM jsonb_to_recordset($2::jsonb) AS r(model text, version integer, bucket bigint, requests integer, errors integer, sum_ms float8, idx jsonb, cnt jsonb)`,
      [
        options.serverId,
        JSON.stringify(rows.map((c) => ({ model: c.model, version: c.version, bucket: c.bucket, requests: c.requests, errors: c.errors, sum_ms: c.latencySumMs, idx: [...c.latency.keys()], cnt: [...c.latency.values()] }))),
      ],
    )
    const t = now()
    if (t - lastPrune > 60_000) {
      lastPrune = t
      await options.db.query(`DELETE FROM cairn.serving_stats WHERE bucket < $1`, [new Date(t - keepMs)])
    }
  }

  function merge(into: Map<string, Cell>, from: Map<string, Cell>): void {
    for (const [key, c] of from) {
      const old = into.get(key)
      if (!old) {
        into.set(key, c)
        continue
      }
      old.requests += c.requests
      old.errors += c.errors
      old.latencySumMs += c.latencySumMs
      for (const [i, n] of c.latency) old.latency.set(i, (old.latency.get(i) ?? 0) + n)
    }
  }

  async function flush(): Promise<void> {
    if (flushing) await flushing
    const batch = cells
    cells = new Map()
    flushing = write(batch).catch((error: unknown) => {
      // Kept for the next flush: a database outage delays the figures, it does not lose them.
      merge(cells, batch)
      options.onError?.(error)
    })
    try {
      await flushing
    } finally {
      flushing = undefined
    }
  }

  return {
    record(model, version, latencyMs, error) {
      const bucket = Math.floor(now() / BUCKET_MS) * BUCKET_MS
      const key = `${model}\u0000${version}\u0000${bucket}`
      let cell = cells.get(key)
      if (!cell) {
        cell = { model, version, bucket, requests: 0, errors: 0, latencySumMs: 0, latency: new Map() }
        cells.set(key, cell)
      }
      cell.requests++
      if (error) cell.errors++
      cell.latencySumMs += latencyMs
      const i = Math.min(bucketOf(latencyMs), LATENCY_BUCKETS - 1)
      cell.latency.set(i, (cell.latency.get(i) ?? 0) + 1)
    },
    flush,
    start() {
      timer ??= setInterval(() => void flush(), flushMs)
      timer.unref()
    },
    async stop() {
      if (timer) clearInterval(timer)
      timer = undefined
      await flush()
    },
  }
}
