/**
 * One watcher per worker per Slurm cluster (submitit's InfoWatcher): every job the worker follows is polled
 * with ONE `squeue -j id1,id2,...` call per interval, the interval growing from `minIntervalMs` to
 * `maxIntervalMs` while nothing changes and shrinking back when a job is added or changes state. A job
 * squeue no longer lists is looked up once with `scontrol show job` (final state and exit code), then with
 * `sacct` where accounting answers. A requeued job keeps its id and is simply followed on.
 */
import { FINISHED_STATES, type JobInfo, type SlurmCommands } from './slurm-commands.ts'

export interface WatchedJob {
  /** Every state squeue reports (PENDING, RUNNING, REQUEUED, ...), once per change. */
  onState(state: string): void
  /** The job ended (`info.state` is terminal) or vanished (`undefined`: no one can tell its outcome). */
  onFinished(info: JobInfo | undefined): void
  /**
   * squeue failed (a message naming where it ran; the job is not taken as ended, the watcher retries with
   * backoff), or answers again (undefined). Once per outage.
   */
  onTrouble?(message: string | undefined): void
}

export interface WatcherTiming {
  minIntervalMs: number
  maxIntervalMs: number
  factor: number
}

export const DEFAULT_TIMING: WatcherTiming = { minIntervalMs: 250, maxIntervalMs: 10_000, factor: 1.3 }

export class SlurmWatcher {
  readonly commands: SlurmCommands
  private readonly timing: WatcherTiming
  private readonly jobs = new Map<string, { watcher: WatchedJob; state?: string }>()
  private interval: number
  private timer: NodeJS.Timeout | undefined
  private polling = false
  /** A job was added while a poll was running: the next poll comes after the shortest interval. */
  private hurried = false
  /** The message of the squeue failure going on, if any. */
  private trouble: string | undefined

  constructor(commands: SlurmCommands, timing: WatcherTiming = DEFAULT_TIMING) {
    this.commands = commands
    this.timing = timing
    this.interval = timing.minIntervalMs
  }

  get size(): number {
    return this.jobs.size
  }

  watch(jobId: string, watcher: WatchedJob): void {
    this.jobs.set(jobId, { watcher })
    this.speedUp()
  }

  unwatch(jobId: string): void {
    this.jobs.delete(jobId)
    if (this.jobs.size === 0 && this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
  }

  /** Polls soon (a job was added, or cancelled and is expected to change). */
  speedUp(): void {
    this.interval = this.timing.minIntervalMs
    if (this.polling) {
      this.hurried = true
      return
    }
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = setTimeout(() => void this.poll(), this.interval)
  }

  private schedule(): void {
    if (this.jobs.size === 0 || this.timer !== undefined) return
    this.timer = setTimeout(() => void this.poll(), this.interval)
  }

  /** Tells every job once when squeue starts failing and once when it answers again. */
  private report(trouble: string | undefined): void {
    if (trouble === undefined && this.trouble === undefined) return
    if (trouble !== undefined && this.trouble !== undefined) return
    this.trouble = trouble
    const message = trouble === undefined ? undefined : `${trouble}; the job is not taken as ended, squeue is asked again with backoff`
    for (const entry of this.jobs.values()) {
      try {
        entry.watcher.onTrouble?.(message)
      } catch {
        // one listener must not keep the others from hearing it
      }
    }
  }

  private async poll(): Promise<void> {
    this.timer = undefined
    if (this.jobs.size === 0) return
    this.polling = true
    let changed = false
    try {
      const ids = [...this.jobs.keys()]
      const states = await this.commands.queueStates(ids)
      this.report(states === undefined ? (this.commands.lastFailure ?? 'squeue failed') : undefined)
      if (states !== undefined) {
        for (const id of ids) {
          const entry = this.jobs.get(id)
          if (entry === undefined) continue
          const state = states.get(id)
          if (state !== undefined && !FINISHED_STATES.has(state)) {
            if (state !== entry.state) {
              entry.state = state
              changed = true
              entry.watcher.onState(state)
            }
            continue
          }
          // Ended (or no longer listed): the controller keeps finished jobs for MinJobAge.
          changed = true
          const shown = await this.commands.showJob(id)
          if (shown === 'error') continue
          if (shown !== undefined && !FINISHED_STATES.has(shown.state)) {
            if (shown.state !== entry.state) {
              entry.state = shown.state
              entry.watcher.onState(shown.state)
            }
            continue
          }
          const info = shown ?? (await this.commands.accounting(id))
          this.jobs.delete(id)
          entry.watcher.onFinished(info)
        }
      }
    } catch {
      // A listener that threw must not stop the polling of every other job: poll again soon.
      changed = true
    } finally {
      this.polling = false
    }
    const hurried = this.hurried
    this.hurried = false
    this.interval = changed || hurried ? this.timing.minIntervalMs : Math.min(this.timing.maxIntervalMs, this.interval * this.timing.factor)
    this.schedule()
  }
}

/** The watchers of this process, one per cluster (key: the cluster name and its SLURM_CONF). */
const watchers = new Map<string, SlurmWatcher>()

export function watcherFor(key: string, create: () => SlurmWatcher): SlurmWatcher {
  let watcher = watchers.get(key)
  if (watcher === undefined) {
    watcher = create()
    watchers.set(key, watcher)
  }
  return watcher
}
