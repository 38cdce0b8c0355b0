/**
 * Log-spaced latency buckets for the serving figures (migration 0016): bucket 0 holds latencies up
 * to 0.01 ms, bucket i (1 <= i < COUNT - 1) those in (0.01 * 2^((i-1)/16), 0.01 * 2^(i/16)] ms,
 * and the last one everything above the highest bound (about 168 s). Neighbouring bounds differ by
 * 4.4 %, and a quantile is read by geometric interpolation inside its bucket, so it is within about
 * 2.2 % of the exact value (Prometheus' default buckets are 2.5x apart).
 */
export const LATENCY_MIN_MS = 0.01
export const STEPS_PER_DOUBLING = 16
/** Bounds up to LATENCY_MIN_MS * 2^24 (~168 s), plus one bucket above. */
export const LATENCY_BUCKETS = 24 * STEPS_PER_DOUBLING + 2

/** Upper bound (ms) of bucket i; Infinity for the last. */
export function bucketUpperMs(i: number): number {
  return i >= LATENCY_BUCKETS - 1 ? Infinity : LATENCY_MIN_MS * 2 ** (i / STEPS_PER_DOUBLING)
}

/** The bucket a latency (ms) falls into. */
export function bucketOf(ms: number): number {
  if (!(ms > LATENCY_MIN_MS)) return 0
  const i = Math.ceil(Math.log2(ms / LATENCY_MIN_MS) * STEPS_PER_DOUBLING - 1e-9)
  return Math.min(i, LATENCY_BUCKETS - 1)
}

/**
 * The q-quantile (0 < q <= 1) of the latencies counted in `counts` (bucket index -> count), or null
 * when there are none. Inside a bucket the rank is placed geometrically between its bounds.
 */
export function quantileMs(counts: ReadonlyMap<number, number>, q: number): number | null {
  let total = 0
  for (const n of counts.values()) total += n
  if (total === 0) return null
  const rank = Math.max(1, Math.ceil(q * total))
  let seen = 0
  for (const i of [...counts.keys()].sort((a, b) => a - b)) {
    const n = counts.get(i)!
    if (n <= 0) continue
    if (seen + n >= rank) {
      if (i === 0) return LATENCY_MIN_MS
      if (i >= LATENCY_BUCKETS - 1) return bucketUpperMs(LATENCY_BUCKETS - 2)
      const lower = bucketUpperMs(i - 1)
      const upper = bucketUpperMs(i)
      // The rank's place among the bucket's n values, each taken at the middle of its share.
      const within = (rank - seen - 0.5) / n
      return lower * (upper / lower) ** within
    }
    seen += n
  }
  return bucketUpperMs(LATENCY_BUCKETS - 2)
}
