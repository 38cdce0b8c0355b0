/**
 * The Slurm commands cairn runs (sbatch, squeue, scontrol, scancel, sacct), as argv, through a runner
 * (slurm-runner.ts): on this machine (`submit: { via: local }`), where they find their cluster through
 * SLURM_CONF in the given environment, or on a login node over SSH (`submit: { via: ssh }`).
 * Every call is counted per command, for the benchmarks and the watcher's tests.
 */
import { type CommandResult, LocalSlurmRunner, type SlurmRunner } from './slurm-runner.ts'

export type { CommandResult } from './slurm-runner.ts'

/** Terminal job states (Slurm's JOB_STATE_BASE values past RUNNING). */
export const FINISHED_STATES = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE', 'OUT_OF_MEMORY'])

export interface JobInfo {
  state: string
  /** The job's exit code (the first part of ExitCode=code:signal). */
  exitCode?: number
  signal?: number
  stdout?: string
  stderr?: string
  workdir?: string
  nodeList?: string
  reason?: string
}

export class SlurmCommands {
  readonly calls = new Map<string, number>()
  readonly runner: SlurmRunner

  /** An environment: the commands run on this machine with it. */
  constructor(runner: SlurmRunner | NodeJS.ProcessEnv) {
    this.runner = typeof runner.run === 'function' ? (runner as SlurmRunner) : new LocalSlurmRunner(runner as NodeJS.ProcessEnv)
  }

  /** Where the commands run ("this machine", "the login node NAME (user@host:port)"), for messages. */
  get where(): string {
    return this.runner.where
  }

  run(command: string, args: readonly string[], timeoutMs = 30_000): Promise<CommandResult> {
    this.calls.set(command, (this.calls.get(command) ?? 0) + 1)
    return this.runner.run(command, args, timeoutMs)
  }

  /** `sbatch --parsable --hold SCRIPT`: the job id (held: it cannot start before `release`). */
  /** `unknownOutcome`: sbatch's answer was lost (it may have submitted a job); `hostKeyRefused`: nothing ran. */
  async submitHeld(script: string): Promise<{ ok: true; jobId: string } | { ok: false; message: string; hostKeyRefused?: boolean; unknownOutcome?: boolean }> {
    const result = await this.run('sbatch', ['--parsable', '--hold', script])
    const jobId = result.stdout.trim().split(';')[0] ?? ''
    if (result.unreachable !== undefined) return { ok: false, message: `${result.stderr}; nothing was submitted`, hostKeyRefused: result.unreachable.hostKeyRefused }
    if (result.code === -1 && !(this.runner instanceof LocalSlurmRunner)) return { ok: false, message: result.stderr.trim(), unknownOutcome: true }
    if (result.code !== 0 || !/^\d+$/.test(jobId)) return { ok: false, message: `sbatch on ${this.where} failed (exit ${result.code}): ${(result.stderr || result.stdout).trim()}` }
    return { ok: true, jobId }
  }

  async release(jobId: string): Promise<CommandResult> {
    return this.run('scontrol', ['release', jobId])
  }

  async cancel(jobId: string): Promise<CommandResult> {
    return this.run('scancel', [jobId])
  }

  /**
   * `scancel --name=NAME`: for an sbatch whose answer was lost (the connection dropped while it ran), the job
   * it may have submitted, held, is found by its unique name and cancelled.
   */
  async cancelByName(jobName: string): Promise<CommandResult> {
    return this.run('scancel', [`--name=${jobName}`])
  }

  /**
   * Every job the controller still knows by this name (`squeue -t all --name`), finished ones included;
   * undefined when squeue failed (`lastFailure` says why). Names are unique per job (see slurm.ts).
   */
  async jobsNamed(jobName: string): Promise<{ jobId: string; state: string }[] | undefined> {
    const result = await this.run('squeue', ['-h', '-t', 'all', `--name=${jobName}`, '-o', '%i %T'])
    this.lastFailure = undefined
    if (result.code !== 0) {
      this.lastFailure = this.squeueFailure(result)
      return undefined
    }
    return idStates(result.stdout).filter(([id]) => /^\d+$/.test(id)).map(([jobId, state]) => ({ jobId, state }))
  }

  private squeueFailure(result: CommandResult): string {
    return result.code === -1 ? result.stderr.trim() : `squeue on ${this.where} failed (exit ${result.code}): ${result.stderr.trim()}`
  }

  /** Why the last `queueStates` or `jobsNamed` answered undefined (a message naming where squeue ran). */
  lastFailure: string | undefined

  /** One `squeue` call for many jobs: id -> state of the jobs it still lists (undefined when squeue failed). */
  async queueStates(jobIds: readonly string[]): Promise<Map<string, string> | undefined> {
    const result = await this.run('squeue', ['-h', '-j', jobIds.join(','), '-o', '%i %T'])
    this.lastFailure = undefined
    const states = new Map(idStates(result.stdout))
    // squeue exits 1 when every id it was given is unknown; a partial answer is still an answer.
    if (result.code !== 0 && states.size === 0 && !/Invalid job id/i.test(result.stderr)) {
      this.lastFailure = this.squeueFailure(result)
      return undefined
    }
    return states
  }

  /** `scontrol show job -o ID`: undefined when the controller no longer knows the job. */
  async showJob(jobId: string): Promise<JobInfo | undefined | 'error'> {
    const result = await this.run('scontrol', ['show', 'job', '-o', jobId])
    if (result.code !== 0) return /Invalid job id/i.test(result.stderr) ? undefined : 'error'
    return parseShowJob(result.stdout)
  }

  /** `sacct` for a job the controller forgot; undefined when there is no accounting (no slurmdbd). */
  async accounting(jobId: string): Promise<JobInfo | undefined> {
    const result = await this.run('sacct', ['-n', '-P', '-X', '-j', jobId, '-o', 'State,ExitCode'], 10_000).catch(() => undefined)
    if (result === undefined || result.code !== 0) return undefined
    const [state, exit] = (result.stdout.trim().split('\n')[0] ?? '').split('|')
    if (state === undefined || state === '') return undefined
    const [code, signal] = (exit ?? '').split(':').map(Number)
    return { state: state.split(' ')[0] ?? state, ...(Number.isFinite(code) ? { exitCode: code } : {}), ...(Number.isFinite(signal) ? { signal } : {}) }
  }

  /** Node names of a Slurm host list (`n[1-2]` -> n1, n2). */
  async hostnames(nodeList: string): Promise<string[]> {
    const result = await this.run('scontrol', ['show', 'hostnames', nodeList])
    return result.code === 0 ? result.stdout.split('\n').map((line) => line.trim()).filter((line) => line !== '') : []
  }
}

/** Parses `scontrol show job -o` (one line of Key=Value words). */
export function parseShowJob(text: string): JobInfo | undefined {
  const fields = new Map<string, string>()
  for (const match of text.matchAll(/(?:^|\s)([A-Za-z:/]+)=(\S*)/g)) {
    if (!fields.has(match[1] as string)) fields.set(match[1] as string, match[2] as string)
  }
  const state = fields.get('JobState')
  if (state === undefined) return undefined
  const [code, signal] = (fields.get('ExitCode') ?? '').split(':').map(Number)
  const info: JobInfo = { state }
  if (Number.isFinite(code)) info.exitCode = code as number
  if (Number.isFinite(signal)) info.signal = signal as number
  const set = (key: 'stdout' | 'stderr' | 'workdir' | 'nodeList' | 'reason', field: string): void => {
    const value = fields.get(field)
    if (value !== undefined && value !== '' && value !== '(null)') info[key] = value
  }
  set('stdout', 'StdOut')
  set('stderr', 'StdErr')
  set('workdir', 'WorkDir')
  set('nodeList', 'NodeList')
  set('reason', 'Reason')
  return info
}

/** The `ID STATE` lines of `squeue -h -o '%i %T'`, as [id, state] pairs. */
function idStates(stdout: string): [string, string][] {
  const pairs: [string, string][] = []
  for (const line of stdout.split('\n')) {
    const [id, state] = line.trim().split(/\s+/)
    if (id !== undefined && state !== undefined && id !== '') pairs.push([id, state])
  }
  return pairs
}
