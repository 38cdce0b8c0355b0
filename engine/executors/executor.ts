/**
 * One interface for the three ways `train` runs its ranks (STYLE.md: "start ranks, stream their lines,
 * wait, cancel, re-attach"). The `train` operator picks an executor by `executor:` and never branches on
 * it deeper inside.
 *
 * Terminology:
 *   rank        one process of a multi-process job; RANK 0..WORLD_SIZE-1, NODE_RANK per node,
 *               LOCAL_RANK per process on its node (SPEC section 4: the torchrun environment).
 *   job         everything one attempt started: local process groups, remote processes over SSH, or
 *               one Slurm job. Exactly one job per attempt, ever.
 *   handle      what identifies a job durably (pids with their hosts, or a Slurm job id). It is
 *               recorded with the attempt BEFORE the job starts running, so that a worker that
 *               restarts can re-attach instead of starting a second job.
 */

/** What a job runs: the same argv on every rank, with the rank environment added by the executor. */
export interface JobSpec {
  /** Program and arguments, passed as argv (never through a shell). */
  argv: readonly string[]
  /** Extra environment for every rank (the task's rendered env, CAIRN_* variables). */
  env: Readonly<Record<string, string>>
  nodes: number
  tasksPerNode: number
  gpusPerNode: number
  /** Working directory of the ranks (on each node); created by the executor when missing. */
  workdir: string
  /** Port rank 0 listens on for the rendezvous (MASTER_PORT); the executor picks one when undefined. */
  masterPort?: number
  /** Files, relative to rank 0's workdir, to bring back into `artifactsDir` when the job succeeded. */
  artifacts: readonly string[]
  /** Local folder the artifacts are copied into. */
  artifactsDir: string
  /** Slurm options from the task's validated params (`slurm:` of SPEC section 4). */
  slurm?: SlurmOptions
}

export interface SlurmOptions {
  partition?: string
  account?: string
  qos?: string
  time?: string
  mem?: string
  constraint?: string
  exclusive?: boolean
}

/** One line a rank wrote, already split (no newline). */
export interface RankLine {
  /** -1: a line of the job itself rather than of a rank (a Slurm batch script, srun's own messages). */
  rank: number
  /** Host or node name the rank ran on, when known. */
  host?: string
  stream: 'stdout' | 'stderr'
  line: string
}

/** A durable identification of a started job (JSON, stored with the attempt). */
export type JobHandle =
  | { executor: 'local'; pids: number[] }
  /** `status`: the file the rank's wrapper writes its exit status to (absent in handles of older versions). */
  | { executor: 'ssh'; cluster: string; processes: { host: string; pgid: number; status?: string }[] }
  /**
   * `jobName`: the job's unique Slurm name, recorded (with `jobId: ''`) BEFORE sbatch is sent, so that a
   * worker taking over an attempt whose submitter died before recording the id finds that job by name
   * instead of submitting a second one. `jobId` is '' until the id is known (and in handles of older
   * versions `jobName` is absent).
   */
  | { executor: 'slurm'; cluster: string | null; jobId: string; jobName?: string }

export type JobOutcome =
  | { ok: true; artifacts: string[] }
  /** `exit_code`: a rank failed; `infrastructure`: the executor could not run or follow the job. */
  | { ok: false; kind: 'exit_code' | 'infrastructure' | 'cancelled' | 'timeout'; retryable: boolean; message: string; exitCode?: number }

export interface RunningJob {
  readonly handle: JobHandle
  /** Resolves once every rank has ended (and artifacts are fetched on success). Never rejects. */
  readonly done: Promise<JobOutcome>
  /** Stops every rank on every host (process groups, remote processes, `scancel`), confirmed; idempotent. */
  cancel(reason: 'cancelled' | 'timeout'): Promise<void>
}

/** What is known of a running job, as it becomes known (shown on the attempt's page). */
export interface JobProgress {
  /** The executor's own state of the job (Slurm: PENDING, RUNNING, COMPLETED, ...). */
  state?: string
  /** Every rank with the host or node it runs on. */
  ranks?: { rank: number; host: string }[]
}

export interface StartOptions {
  /** Every rank's output lines; a returned promise means "slow down" (back-pressure). */
  onLine(line: RankLine): unknown
  /** The job's state and where its ranks run, whenever that changes. */
  onProgress?(progress: JobProgress): void
  /** Called with the handle before the job is allowed to run; the job does not start until it resolves. */
  record(handle: JobHandle): Promise<void>
  signal: AbortSignal
}

export interface Executor {
  readonly kind: 'local' | 'ssh' | 'slurm'
  /**
   * Whether a job can outlive the worker that started it (Slurm jobs, SSH ranks): then its handle is
   * stored with the attempt and a worker that takes the attempt over re-attaches. Local ranks die with
   * their worker, so there is nothing to re-attach to.
   */
  readonly outlivesWorker: boolean
  /**
   * Where ranks' folders go on the nodes when a task names none (`<workRoot>/<run>/<task>/<attempt>`);
   * undefined: the attempt's own folder on the worker (local ranks). An executor with a workRoot runs
   * ranks away from the worker: they get the task's env only, never the worker's environment.
   */
  readonly workRoot?: string
  /** Releases what the executor holds (connections); called by `train` when its job has ended. */
  close?(): Promise<void>
  start(spec: JobSpec, options: StartOptions): Promise<RunningJob>
  /** Follows a job started earlier (by this or another worker) from its recorded handle. */
  reattach(handle: JobHandle, options: ReattachOptions): Promise<RunningJob>
}

export interface ReattachOptions extends Omit<StartOptions, 'record'> {
  /** The job's spec when the caller can rebuild it (artifacts to collect, ranks per node); optional. */
  spec?: JobSpec
  /**
   * Records a handle completed by the re-attach (a Slurm job found by the name the handle recorded before
   * it was submitted, or submitted now because none was); without it such a handle cannot be taken over.
   * Given by a worker that takes the attempt over (a held Slurm job is then released); absent when the
   * caller only stops the job of a cancelled attempt.
   */
  record?(handle: JobHandle): Promise<void>
}

/** The torchrun-style environment of one rank (SPEC section 4). */
export function rankEnvironment(at: { rank: number; nodeRank: number; localRank: number; worldSize: number; localWorldSize: number; masterAddr: string; masterPort: number }): Record<string, string> {
  return {
    RANK: String(at.rank),
    NODE_RANK: String(at.nodeRank),
    LOCAL_RANK: String(at.localRank),
    WORLD_SIZE: String(at.worldSize),
    LOCAL_WORLD_SIZE: String(at.localWorldSize),
    MASTER_ADDR: at.masterAddr,
    MASTER_PORT: String(at.masterPort),
  }
}
