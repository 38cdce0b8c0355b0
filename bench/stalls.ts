/**
 * How long this machine keeps a running process off its CPU: a busy loop reads the clock without
 * pause for a while, and every gap between two readings is time the process was not running (the
 * kernel, other processes, or on a virtual machine the hypervisor taking the virtual CPU away). A
 * request that arrives in such a gap waits it out, whatever the server does: when gaps of several
 * milliseconds cover more than 1 % of the time, no p99 measured here can be below them.
 */
export interface Stalls {
  ms: number
  /** Gaps longer than 1 ms, 2 ms and 5 ms. */
  over1: number
  over2: number
  over5: number
  longestMs: number
  /** Share of the time spent in gaps longer than 1 ms. */
  stalledShare: number
}

export function measureStalls(ms: number): Stalls {
  let last = performance.now()
  const end = last + ms
  let over1 = 0
  let over2 = 0
  let over5 = 0
  let longestMs = 0
  let stalled = 0
  while (last < end) {
    const now = performance.now()
    const gap = now - last
    last = now
    if (gap <= 1) continue
    over1++
    stalled += gap
    if (gap > 2) over2++
    if (gap > 5) over5++
    if (gap > longestMs) longestMs = gap
  }
  return { ms, over1, over2, over5, longestMs, stalledShare: stalled / ms }
}

export function stallsLine(s: Stalls): string {
  return `a busy process was kept off its CPU ${s.over1} times for over 1 ms in ${s.ms / 1000} s (${s.over2} over 2 ms, ${s.over5} over 5 ms, the longest ${s.longestMs.toFixed(1)} ms; ${(s.stalledShare * 100).toFixed(1)} % of the time)`
}
