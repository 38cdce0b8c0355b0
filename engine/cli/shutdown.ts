/**
 * How a long-running command stops. The first SIGINT/SIGTERM starts an orderly stop (workers drain
 * for their grace period); the second stops now (running attempts are handed back to the queue, the
 * embedded Postgres is still shut down cleanly); a third exits at once. Every step of a stop has a
 * time limit, so a stop never hangs on a database that is away or a client that never hangs up.
 *
 * The same signal twice within `repeatMs` counts once: `npm start` and `npx` forward the terminal's
 * Ctrl-C to cairn, which has already received it from the terminal itself.
 */
import { setTimeout as sleep } from 'node:timers/promises'

const SIGNALS = ['SIGINT', 'SIGTERM'] as const

export interface StopSignals {
  /** Resolves at the first signal. */
  readonly requested: Promise<void>
  /** True once the first signal has arrived. */
  readonly stopping: boolean
  /** Aborted at the second signal: stop now. */
  readonly urgent: AbortSignal
  /** Stops listening (signals get their default behaviour again). */
  dispose(): void
}

export interface StopSignalOptions {
  /** Called at the second signal. */
  onUrgent(): void
  /** Called at the third signal; should end the process. */
  onForce(): void
  /** Repeats of one signal closer together than this count once. @default 1000 */
  repeatMs?: number
}

export function watchStopSignals(options: StopSignalOptions): StopSignals {
  const repeatMs = options.repeatMs ?? 1000
  const urgent = new AbortController()
  let count = 0
  let last: { signal: string; at: number } | undefined
  let resolveRequested!: () => void
  const requested = new Promise<void>((resolve) => (resolveRequested = resolve))
  const onSignal = (signal: NodeJS.Signals): void => {
    const now = Date.now()
    if (last && last.signal === signal && now - last.at < repeatMs) return
    last = { signal, at: now }
    count++
    if (count === 1) resolveRequested()
    else if (count === 2) {
      options.onUrgent()
      urgent.abort(new Error(`stop now (${signal})`))
    } else options.onForce()
  }
  for (const signal of SIGNALS) process.on(signal, onSignal)
  return {
    requested,
    get stopping() {
      return count > 0
    },
    urgent: urgent.signal,
    dispose() {
      for (const signal of SIGNALS) process.off(signal, onSignal)
    },
  }
}

/** Runs `fn` for at most `ms`; resolves false when the time ran out (fn keeps running unobserved). */
export async function withinTime(ms: number, fn: () => Promise<unknown>): Promise<boolean> {
  const timer = new AbortController()
  try {
    return await Promise.race([fn().then(() => true), sleep(ms, false, { signal: timer.signal })])
  } finally {
    timer.abort()
  }
}

/** Resolves after `ms`, or at once when `signal` aborts; never rejects. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return sleep(ms, undefined, signal ? { signal } : {}).catch(() => undefined)
}

/** "1 running task", "3 running tasks". */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}
