/**
 * Load at a fixed rate (an open loop, as vegeta or wrk2 make it; Feast's published lookup latencies
 * were measured so): requests are due at even intervals whatever the answers do, and go out over
 * `slots` connections, each carrying one request at a time. A request due while every connection is
 * busy waits for one, and that wait counts in its latency: a server that falls behind shows it (a
 * closed loop such as autocannon's hides it, and at its top speed measures how long 50 requests
 * queue behind each other instead). Latency runs from the moment the load loop saw the request due
 * (timers wake up to a millisecond late; that lateness is the client's, not the server's) to the
 * answer's last byte.
 */
export interface PacedLoad {
  /** Requests per second, over all connections. */
  rate: number
  seconds: number
  slots: number
  /** Sends one request on a connection; resolves true for a good answer. */
  send: (slot: number) => Promise<boolean>
}

export interface PacedFigures {
  /** Latencies of the good answers, in ms. */
  latencies: number[]
  bad: number
}

export function pacedLoad({ rate, seconds, slots, send }: PacedLoad): Promise<PacedFigures> {
  const total = Math.round(rate * seconds)
  const interval = 1000 / rate
  const free = Array.from({ length: slots }, (_, i) => i)
  const waiting: number[] = []
  const latencies: number[] = []
  let bad = 0
  let issued = 0
  let answered = 0
  const started = performance.now()
  if (total === 0) return Promise.resolve({ latencies, bad })
  return new Promise((resolve) => {
    const dispatch = (slot: number, due: number) => {
      send(slot).then(
        (ok) => (ok ? latencies.push(performance.now() - due) : bad++),
        () => bad++,
      ).finally(() => {
        answered++
        const next = waiting.shift()
        if (next === undefined) free.push(slot)
        else dispatch(slot, next)
        if (answered === total) resolve({ latencies, bad })
      })
    }
    const tick = () => {
      const now = performance.now()
      const due = Math.min(total, Math.floor((now - started) / interval) + 1)
      for (; issued < due; issued++) {
        // The connection idle longest: every connection stays in use (a server closes idle ones).
        const slot = free.shift()
        if (slot === undefined) waiting.push(now)
        else dispatch(slot, now)
      }
      if (issued < total) setTimeout(tick, Math.max(0, started + issued * interval - performance.now()))
    }
    tick()
  })
}
