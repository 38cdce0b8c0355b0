/**
 * The train operator writes what the page shows of its job (`recordState`: PENDING, RUNNING, COMPLETED,
 * ...) one write after the other, so a slow write can never land after a later one and leave an earlier
 * state over the final one. A real Slurm job on the local cluster reports its states; the attempt's first
 * write is held until the job has printed its last line, i.e. until every later state is known. Were the
 * writes started as the states come, the later ones would be in flight beside the held one and land before it.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { localClusterSkipReason, startLocalClusterFor } from '../helpers/local-cluster.ts'
import { runTrain } from '../../operators/train/run.ts'
import type { TrainParams } from '../../operators/train/run.ts'
import type { AttemptJob } from '../../operators/define.ts'

const skip = localClusterSkipReason()

test('train: job state writes are made one after the other, in the order the states came, the last one last', { skip, timeout: 300_000 }, async (t) => {
  const { dir } = await startLocalClusterFor(t)
  // Without a cluster, `executor: slurm` uses the Slurm commands on the PATH with this process's SLURM_CONF.
  const previous = process.env.SLURM_CONF
  process.env.SLURM_CONF = path.join(dir, 'slurm/slurm.conf')
  t.after(() => {
    if (previous === undefined) delete process.env.SLURM_CONF
    else process.env.SLURM_CONF = previous
  })
  const work = mkdtempSync(path.join(tmpdir(), 'cairn-train-state-order-'))
  t.after(() => rmSync(work, { recursive: true, force: true }))

  let lastLine!: () => void
  const jobEnded = new Promise<void>((resolve) => (lastLine = resolve))
  const called: string[] = []
  const landed: string[] = []
  let inFlight = 0
  let mostInFlight = 0
  const attemptJob: AttemptJob = {
    handle: undefined,
    recordHandle: async () => undefined,
    recordState: async (state) => {
      called.push(state.state ?? '')
      inFlight++
      mostInFlight = Math.max(mostInFlight, inFlight)
      // The first write is slow: it ends only once the job has written its last line.
      if (called.length === 1) await jobEnded
      await new Promise((resolve) => setImmediate(resolve))
      landed.push(state.state ?? '')
      inFlight--
    },
  }
  const lines: string[] = []
  const params = { executor: 'slurm', nodes: 1, command: ['sh', '-c', 'echo begin; sleep 2; echo the-end'] } as TrainParams
  const result = await runTrain(params, {
    dagId: 'd',
    runId: 'r',
    taskId: 'fit',
    attempt: 1,
    interval: { start: new Date(0), end: new Date(0), logicalDate: new Date(0) },
    executor: attemptJob,
    signal: new AbortController().signal,
    env: {},
    workerEnv: process.env,
    workdir: work,
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    output: (_stream, line) => {
      lines.push(line)
      if (line === 'the-end') lastLine()
    },
  })
  assert.equal(result.ok, true, JSON.stringify({ result, lines }))
  assert.ok(called.length >= 3, `the job reported its states: ${called.join(', ')}`)
  assert.equal(called[0], 'PENDING')
  assert.equal(called.at(-1), 'COMPLETED')
  assert.ok(called.includes('RUNNING'), called.join(', '))
  assert.equal(mostInFlight, 1, `one write at a time (calls: ${called.join(', ')}; landed: ${landed.join(', ')})`)
  assert.deepEqual(landed, called, 'each write landed in the order its state came')
})
