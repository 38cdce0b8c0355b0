import { test } from 'node:test'
import assert from 'node:assert/strict'
import { type JobInfo, SlurmCommands, parseShowJob } from '../../engine/executors/slurm-commands.ts'
import { SlurmWatcher } from '../../engine/executors/slurm-watcher.ts'

/** A controller in memory: the watcher's decisions (which calls, how often) are what is tested here. */
class FakeSlurm extends SlurmCommands {
  readonly queueCalls: string[][] = []
  readonly showCalls: string[] = []
  readonly queue = new Map<string, string>()
  readonly finished = new Map<string, JobInfo>()

  constructor() {
    super({})
  }

  override async queueStates(jobIds: readonly string[]): Promise<Map<string, string> | undefined> {
    this.queueCalls.push([...jobIds])
    return new Map([...this.queue].filter(([id]) => jobIds.includes(id)))
  }

  override async showJob(jobId: string): Promise<JobInfo | undefined> {
    this.showCalls.push(jobId)
    return this.queue.has(jobId) ? { state: this.queue.get(jobId) as string } : this.finished.get(jobId)
  }

  override async accounting(): Promise<undefined> {
    return undefined
  }
}

const until = async (check: () => boolean) => {
  const deadline = Date.now() + 10_000
  while (!check()) {
    if (Date.now() > deadline) assert.fail('timed out')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

test('50 jobs are polled with one squeue call per interval; finished ones through scontrol', async () => {
  const slurm = new FakeSlurm()
  const watcher = new SlurmWatcher(slurm, { minIntervalMs: 5, maxIntervalMs: 40, factor: 2 })
  const ended = new Map<string, JobInfo | undefined>()
  const states: string[] = []
  for (let i = 1; i <= 50; i++) {
    const id = String(i)
    slurm.queue.set(id, i <= 2 ? 'RUNNING' : 'PENDING')
    watcher.watch(id, { onState: (state) => states.push(`${id}:${state}`), onFinished: (info) => ended.set(id, info) })
  }
  await until(() => slurm.queueCalls.length >= 5)
  assert.ok(slurm.queueCalls.every((ids) => ids.length === 50), 'every squeue call names every job')
  assert.equal(slurm.showCalls.length, 0, 'no scontrol while squeue lists the jobs')
  assert.equal(states.length, 50, 'each state reported once')

  // Job 1 ends (squeue drops it, scontrol still knows it); job 2 vanishes; job 3 is requeued under its id.
  slurm.queue.delete('1')
  slurm.finished.set('1', { state: 'COMPLETED', exitCode: 0 })
  slurm.queue.delete('2')
  slurm.queue.set('3', 'REQUEUED')
  await until(() => ended.size === 2)
  assert.deepEqual(ended.get('1'), { state: 'COMPLETED', exitCode: 0 })
  assert.equal(ended.get('2'), undefined)
  assert.ok(ended.has('2'))
  await until(() => states.includes('3:REQUEUED'))
  assert.equal(watcher.size, 48)
  const calls = slurm.queueCalls.length
  await until(() => slurm.queueCalls.length >= calls + 2)
  assert.equal(slurm.queueCalls.at(-1)?.length, 48)
  for (let i = 3; i <= 50; i++) watcher.unwatch(String(i))
  const stopped = slurm.queueCalls.length
  await new Promise((resolve) => setTimeout(resolve, 100))
  assert.ok(slurm.queueCalls.length <= stopped + 1, 'no polling without jobs')
})

test('the interval grows while nothing changes, up to the maximum', async () => {
  const slurm = new FakeSlurm()
  const watcher = new SlurmWatcher(slurm, { minIntervalMs: 10, maxIntervalMs: 80, factor: 2 })
  slurm.queue.set('7', 'RUNNING')
  const times: number[] = []
  const record = slurm.queueStates.bind(slurm)
  slurm.queueStates = async (ids) => {
    times.push(performance.now())
    return record(ids)
  }
  watcher.watch('7', { onState: () => undefined, onFinished: () => undefined })
  await until(() => times.length >= 7)
  watcher.unwatch('7')
  const gaps = times.slice(1).map((t, i) => t - (times[i] as number))
  // 10 (state seen: back to min), 10, 20, 40, 80, 80: growing, capped.
  assert.ok((gaps[3] as number) >= 35 && (gaps[5] as number) >= 75, gaps.join(' '))
  assert.ok((gaps[5] as number) < 400, gaps.join(' '))
})

test('squeue failing (a login node away) is reported once, retried with backoff, and never ends the job', async () => {
  const slurm = new FakeSlurm()
  const watcher = new SlurmWatcher(slurm, { minIntervalMs: 5, maxIntervalMs: 40, factor: 2 })
  slurm.queue.set('9', 'RUNNING')
  let down = false
  const times: number[] = []
  const record = slurm.queueStates.bind(slurm)
  slurm.queueStates = async (ids) => {
    times.push(performance.now())
    if (!down) return record(ids)
    slurm.lastFailure = 'cannot reach the login node login1 (u@h:22): Timed out while waiting for handshake'
    return undefined
  }
  const troubles: (string | undefined)[] = []
  let finished = false
  watcher.watch('9', { onState: () => undefined, onFinished: () => (finished = true), onTrouble: (message) => troubles.push(message) })
  await until(() => times.length >= 2)
  down = true
  const from = times.length
  await until(() => times.length >= from + 6)
  assert.equal(finished, false, 'a failing squeue never ends the job')
  assert.equal(slurm.showCalls.length, 0, 'nor is the job looked up as if it had left the queue')
  assert.deepEqual(troubles, ['cannot reach the login node login1 (u@h:22): Timed out while waiting for handshake; the job is not taken as ended, squeue is asked again with backoff'])
  const gaps = times.slice(from).map((t, i) => t - (times[from + i - 1] as number))
  assert.ok((gaps.at(-1) as number) >= 35, `backoff while failing: ${gaps.join(' ')}`)
  down = false
  await until(() => troubles.length === 2)
  assert.equal(troubles[1], undefined, 'told once that squeue answers again')
  assert.equal(finished, false)
  watcher.unwatch('9')
})

test('scontrol show job -o is parsed', () => {
  const info = parseShowJob('JobId=12 JobName=cairn-x UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=3:0 NodeList=n[1-2] WorkDir=/w StdErr=/w/e StdOut=/w/o')
  assert.deepEqual(info, { state: 'FAILED', exitCode: 3, signal: 0, stdout: '/w/o', stderr: '/w/e', workdir: '/w', nodeList: 'n[1-2]', reason: 'NonZeroExitCode' })
  assert.equal(parseShowJob('nothing here'), undefined)
})
