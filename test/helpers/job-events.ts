/**
 * What an executor test collects from a job: the lines of its ranks, the handles it recorded and, for a
 * Slurm job, the job's state at the moment its handle was recorded (held: it may not run before that).
 * A Slurm handle recorded before sbatch (the job's name, no id yet) goes to `intents`.
 */
import type { JobHandle, RankLine } from '../../engine/executors/executor.ts'

export interface JobEvents {
  lines: RankLine[]
  handles: JobHandle[]
  intents: JobHandle[]
  states: (string | undefined)[]
  options(signal?: AbortSignal): { onLine(line: RankLine): void; record(handle: JobHandle): Promise<void>; signal: AbortSignal }
}

export function collectJobEvents(jobState: (jobId: string) => Promise<string | undefined>): JobEvents {
  const lines: RankLine[] = []
  const handles: JobHandle[] = []
  const intents: JobHandle[] = []
  const states: (string | undefined)[] = []
  return {
    lines,
    handles,
    intents,
    states,
    options: (signal = new AbortController().signal) => ({
      onLine: (line: RankLine) => void lines.push(line),
      record: async (handle: JobHandle) => {
        if (handle.executor === 'slurm' && handle.jobId === '') return void intents.push(handle)
        handles.push(handle)
        if (handle.executor === 'slurm') states.push(await jobState(handle.jobId))
      },
      signal,
    }),
  }
}

/** Polls `check` every 100 ms until it holds; fails naming `what` after `ms`. */
export async function pollUntil(what: string, check: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
