/**
 * The local executor: every rank is a child process group on this machine (nodes x tasks_per_node
 * processes, MASTER_ADDR 127.0.0.1, a free MASTER_PORT). Each rank is started by runProcess, so it
 * gets its own process group, runs as the task user when one is given, is killed with its group on
 * cancel or timeout, and cannot outlive the worker. Lines are passed on labelled with their rank.
 *
 * Failure kinds: a rank that exits non-zero (or dies of a signal cairn did not send) makes the job
 * `exit_code`, and the other ranks are stopped at once (a distributed job cannot finish without a
 * rank). A rank that cannot start is `infrastructure`. Artifacts come from rank 0's workdir (all
 * ranks share one workdir here) once every rank exited 0, never following a link out of the workdir.
 *
 * Re-attach: a local job's processes die with the worker (pdeathsig and the watchdog of
 * runProcess), so there is nothing to follow; reattach reports the job lost (retryable).
 */
import { constants, createWriteStream } from 'node:fs'
import { mkdir, open, realpath } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { createServer } from 'node:net'
import path from 'node:path'
import { hostname } from 'node:os'
import type { ProcessExit } from '../process/run-process.ts'
import type { TaskUser } from '../process/task-user.ts'
import { rankEnvironment } from './executor.ts'
import type { Executor, JobHandle, JobOutcome, JobSpec, RunningJob, StartOptions } from './executor.ts'

export interface LocalExecutorOptions {
  /** The OS user the ranks run as; undefined: the worker's own user. */
  user?: TaskUser
  /** Time between SIGTERM and SIGKILL for each rank's group. @default 10000 */
  killGraceMs?: number
}

/** A free TCP port on the loopback interface (the kernel picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

export function createLocalExecutor(options: LocalExecutorOptions = {}): Executor {
  return {
    kind: 'local',
    outlivesWorker: false,
    async start(spec, startOptions) {
      return startLocal(spec, startOptions, options)
    },
    async reattach(handle) {
      const outcome: JobOutcome = { ok: false, kind: 'infrastructure', retryable: true, message: `the local ranks (pids ${handle.executor === 'local' ? handle.pids.join(', ') : '?'}) ended with the worker that started them` }
      return { handle, done: Promise.resolve(outcome), cancel: async () => {} }
    },
  }
}

async function startLocal(spec: JobSpec, start: StartOptions, options: LocalExecutorOptions): Promise<RunningJob> {
  const worldSize = spec.nodes * spec.tasksPerNode
  const masterPort = spec.masterPort ?? (await freePort())
  const made = await makeWorkdir(spec.workdir, options.user)
  if (made !== undefined) {
    const outcome: JobOutcome = { ok: false, kind: 'infrastructure', retryable: false, message: made }
    return { handle: { executor: 'local', pids: [] }, done: Promise.resolve(outcome), cancel: async () => {} }
  }
  // A local handle names pids, so it is recorded once the ranks are spawned: local ranks cannot
  // outlive the worker, so there is no second job to prevent and the record is informational.
  const { runProcess } = await import('../process/run-process.ts')
  const controller = new AbortController()
  const onOuterAbort = (): void => controller.abort(start.signal.reason)
  if (start.signal.aborted) controller.abort(start.signal.reason)
  else start.signal.addEventListener('abort', onOuterAbort, { once: true })
  let stopReason: 'cancelled' | 'timeout' | 'failed' | undefined
  const pids: number[] = []
  const spawned: Promise<void>[] = []
  const exits: Promise<ProcessExit>[] = []
  for (let rank = 0; rank < worldSize; rank++) {
    const nodeRank = Math.floor(rank / spec.tasksPerNode)
    const localRank = rank % spec.tasksPerNode
    const env = {
      ...spec.env,
      ...rankEnvironment({ rank, nodeRank, localRank, worldSize, localWorldSize: spec.tasksPerNode, masterAddr: '127.0.0.1', masterPort }),
    }
    let markSpawned!: () => void
    spawned.push(new Promise<void>((resolve) => (markSpawned = resolve)))
    const exit = runProcess({
      argv: spec.argv,
      env,
      cwd: spec.workdir,
      ...(options.user ? { user: options.user } : {}),
      signal: controller.signal,
      ...(options.killGraceMs === undefined ? {} : { killGraceMs: options.killGraceMs }),
      onSpawn: (pid) => {
        pids[rank] = pid
        markSpawned()
      },
      onLine: (stream, line) => {
        const wait = start.onLine({ rank, host: 'localhost', stream, line })
        return wait instanceof Promise ? wait : undefined
      },
    }).then((result) => {
      markSpawned()
      // One rank failing dooms the job: stop the others rather than wait for a rendezvous timeout.
      if (!result.aborted && (result.exitCode !== 0 || result.startError) && !controller.signal.aborted) {
        stopReason ??= 'failed'
        controller.abort(new Error(`rank ${rank} failed`))
      }
      return result
    })
    exits.push(exit)
  }
  await Promise.all(spawned)
  const handle: JobHandle = { executor: 'local', pids: pids.filter((p) => p !== undefined) }
  let recordError: string | undefined
  await start.record(handle).catch((error: unknown) => {
    recordError = error instanceof Error ? error.message : String(error)
    controller.abort(new Error('the job handle could not be recorded'))
  })
  if (recordError === undefined) start.onProgress?.({ state: 'RUNNING', ranks: pids.map((_, rank) => ({ rank, host: hostname() })) })

  const done = (async (): Promise<JobOutcome> => {
    const results = await Promise.all(exits)
    start.signal.removeEventListener('abort', onOuterAbort)
    if (recordError !== undefined) return { ok: false, kind: 'infrastructure', retryable: true, message: `the job handle could not be recorded: ${recordError}` }
    if (stopReason === 'cancelled' || stopReason === 'timeout') return { ok: false, kind: stopReason, retryable: stopReason === 'timeout', message: `every rank was stopped (${stopReason})` }
    if (start.signal.aborted) return { ok: false, kind: 'cancelled', retryable: false, message: 'every rank was stopped' }
    const startFailure = results.findIndex((r) => r.startError)
    if (startFailure >= 0) return { ok: false, kind: 'infrastructure', retryable: false, message: `rank ${startFailure} could not start ${spec.argv[0]}: ${results[startFailure]!.startError!.message}` }
    const failed = results.findIndex((r) => !r.aborted && r.exitCode !== 0)
    if (failed >= 0) {
      const r = results[failed]!
      const how = r.exitCode === null ? `was killed by ${r.signal ?? 'a signal'}` : `exited with code ${r.exitCode}`
      return { ok: false, kind: 'exit_code', retryable: true, message: `rank ${failed} ${how}`, ...(r.exitCode === null ? {} : { exitCode: r.exitCode }) }
    }
    const stopped = results.findIndex((r) => r.aborted)
    if (stopped >= 0) return { ok: false, kind: 'exit_code', retryable: true, message: 'ranks were stopped after another rank failed' }
    return collectArtifacts(spec)
  })()

  return {
    handle,
    done,
    async cancel(reason) {
      stopReason ??= reason
      controller.abort(new Error(reason))
      await Promise.all(exits)
    },
  }
}

/**
 * Creates the ranks' workdir when missing, as the task user when there is one: an absolute `workdir`
 * is the DAG author's choice, and the worker (often root) must not create or hand over folders the
 * task user could not make itself. Returns a message when the folder cannot be made.
 */
async function makeWorkdir(workdir: string, user: TaskUser | undefined): Promise<string | undefined> {
  if (!user) {
    try {
      await mkdir(workdir, { recursive: true })
      return undefined
    } catch (error) {
      return `cannot create the workdir ${workdir}: ${(error as Error).message}`
    }
  }
  const { runProcess } = await import('../process/run-process.ts')
  const errors: string[] = []
  const exit = await runProcess({ argv: ['/bin/mkdir', '-p', '--', workdir], env: { PATH: '/usr/bin:/bin' }, cwd: '/', user, onLine: (_stream, line) => void errors.push(line) })
  if (exit.exitCode === 0) return undefined
  return `the task user ${user.name} cannot create the workdir ${workdir}: ${errors.join(' ') || exit.startError?.message || `mkdir exited with ${exit.exitCode}`}`
}

async function collectArtifacts(spec: JobSpec): Promise<JobOutcome> {
  if (spec.artifacts.length === 0) return { ok: true, artifacts: [] }
  await mkdir(spec.artifactsDir, { recursive: true })
  const root = await realpath(spec.workdir)
  const copied: string[] = []
  for (const name of spec.artifacts) {
    const to = path.join(spec.artifactsDir, path.basename(name))
    const problem = await copyArtifact(root, path.resolve(spec.workdir, name), to)
    if (problem !== undefined) return { ok: false, kind: 'exit_code', retryable: problem.retryable, message: `artifact ${name}: ${problem.message}` }
    copied.push(to)
  }
  return { ok: true, artifacts: copied }
}

/**
 * Copies one artifact that the ranks (the task user) wrote. The worker may be root, so a link to
 * a file outside the workdir (`model.onnx -> /etc/shadow`) must not be followed: the real path must
 * stay inside the workdir and the file is opened without following a final link.
 */
async function copyArtifact(root: string, from: string, to: string): Promise<{ message: string; retryable: boolean } | undefined> {
  const real = await realpath(from).catch(() => undefined)
  if (real === undefined) return { message: 'rank 0 did not write it', retryable: true }
  if (!real.startsWith(root + path.sep)) return { message: 'it is outside the workdir (or a link leading out of it)', retryable: false }
  let handle: FileHandle | undefined
  try {
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW)
    if (!(await handle.stat()).isFile()) return { message: 'it is not a regular file', retryable: false }
    await pipeline(handle.createReadStream({ autoClose: false }), createWriteStream(to))
    return undefined
  } catch (error) {
    return { message: `cannot copy it: ${(error as Error).message}`, retryable: true }
  } finally {
    await handle?.close()
  }
}
