/** A sleep that a wake() ends early: the wait of every loop woken by NOTIFY with a poll as fallback. */
export interface Waker {
  wake(): void
  /** Resolves after `ms`, or earlier on wake(); a wake() that came while nobody slept ends the next sleep at once. */
  sleep(ms: number): Promise<void>
}

export function createWaker(): Waker {
  let pending = false
  let wakeSleeper: (() => void) | undefined
  return {
    wake() {
      if (wakeSleeper) wakeSleeper()
      else pending = true
    },
    sleep(ms) {
      if (pending) {
        pending = false
        return Promise.resolve()
      }
      return new Promise((resolve) => {
        const timer = setTimeout(done, ms)
        function done(): void {
          clearTimeout(timer)
          wakeSleeper = undefined
          resolve()
        }
        wakeSleeper = done
      })
    },
  }
}
