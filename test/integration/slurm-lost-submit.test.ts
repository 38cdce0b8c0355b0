/**
 * Slurm on the real local cluster: the worker dies after `sbatch` submitted the job and before the job id
 * was recorded with the attempt (the answer is lost with the worker). An `sbatch` on the first worker's
 * PATH submits through the real one, then SIGKILLs the worker that called it, before the worker reads the
 * job id. The attempt recorded the job's name before submitting, so the scheduler hands it to the next
 * worker, which finds that job by its name, records it, releases it and follows it: the run succeeds with
 * one attempt and exactly one Slurm job, and nothing is submitted a second time.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { startTestEngine } from '../helpers/engine.ts'
import { localClusterSkipReason, slurmCommands, startLocalClusterFor } from '../helpers/local-cluster.ts'
import { logLines, waitForDags } from '../helpers/run-rows.ts'
import type { JobHandle } from '../../engine/executors/executor.ts'
import { createSlurmExecutor } from '../../engine/executors/slurm.ts'
import { taskAbort } from '../../operators/define.ts'

const run = promisify(execFile)
const skip = localClusterSkipReason()

test('Slurm: a worker killed between sbatch and recording the job id; the next worker adopts that job (one attempt, one job)', { skip, timeout: 300_000 }, async (t) => {
  const { fragment, slurmConf } = await startLocalClusterFor(t)
  const slurmEnv = { SLURM_CONF: slurmConf }
  const { slurm, jobTable: allJobs } = slurmCommands(slurmConf)

  const engine = await startTestEngine(t, {
    scheduler: { loopMs: 200, syncEveryMs: 300, lostAfterMs: 3000 },
    dags: {
      'slurm_once.yaml': [
        'dag: slurm_once',
        'tasks:',
        '  fit:',
        '    operator: train',
        // A retry would hide a lost job behind a second attempt (and a second job): the test counts both.
        '    retries: 1',
        '    params:',
        '      executor: slurm',
        '      cluster: local_slurm',
        '      nodes: 2',
        `      command: [sh, -c, ${JSON.stringify('echo "hello-$RANK"; if [ "$RANK" = 0 ]; then echo done > done.txt; fi')}]`,
        '      artifacts: [done.txt]',
        '',
      ].join('\n'),
    },
  })
  writeFileSync(path.join(engine.dir, 'cairn.yaml'), readFileSync(fragment, 'utf8'))
  await waitForDags(engine.db, ['slurm_once'])

  // The first worker's sbatch: submits for real, then kills its caller (the worker) before it prints the id.
  const killed = path.join(engine.dir, 'worker-killed')
  const realSbatch = (await run('sh', ['-c', 'command -v sbatch'])).stdout.trim()
  const bin = fakeSbatch(path.join(engine.dir, 'dying-bin'), [`out=$(${realSbatch} "$@") || exit $?`, `echo "$out" > ${killed}`, 'kill -KILL "$PPID"', 'sleep 5', 'echo "$out"'])

  const jobsBefore = new Set((await allJobs()).map(([id]) => id))
  const first = engine.spawnWorker({ env: { ...slurmEnv, PATH: `${bin}:${process.env.PATH}` }, args: ['--heartbeat', '0.5'] })
  const firstExit = new Promise<NodeJS.Signals | null>((resolve) => first.once('exit', (_code, signal) => resolve(signal)))
  const runId = await engine.trigger('slurm_once')
  assert.equal(await firstExit, 'SIGKILL', 'the first worker died inside sbatch')
  assert.ok(existsSync(killed))
  const submittedId = readFileSync(killed, 'utf8').trim().split(';')[0]!
  assert.match(submittedId, /^\d+$/)
  const attempts = async () => (await engine.db.query<{ attempt: number; state: string; executor_handle: JobHandle | null }>(
    `SELECT attempt, state, executor_handle FROM cairn.attempt WHERE run_id = $1 AND task_id = 'fit' ORDER BY attempt`, [runId])).rows
  // What the dead worker left: the job held (it may not run without a recorded id), its id nowhere in the database.
  assert.match((await slurm(['scontrol', 'show', 'job', '-o', submittedId])), /JobState=PENDING .*Reason=JobHeldUser/)
  const left = await attempts()
  assert.equal(left.length, 1)
  const intent = left[0]!.executor_handle as (JobHandle & { executor: 'slurm' }) | null
  assert.ok(intent, 'the attempt recorded what it was about to submit')
  assert.equal(intent.jobId, '', 'the id was never recorded')

  const second = engine.spawnWorker({ env: slurmEnv, args: ['--heartbeat', '0.5'] })
  assert.equal(await engine.waitForRun(runId, 180_000), 'success', JSON.stringify(await attempts()))
  const done = await attempts()
  assert.equal(done.length, 1, `one attempt: ${JSON.stringify(done)}`)
  assert.deepEqual(done[0]!.executor_handle, { ...intent, jobId: submittedId }, 'the job the dead worker submitted, adopted')
  const newJobs = (await allJobs()).filter(([id]) => !jobsBefore.has(id))
  assert.deepEqual(newJobs, [[submittedId, intent.jobName, 'COMPLETED']], 'exactly one Slurm job for the attempt')
  const { rows: ti } = await engine.db.query<{ failures: number; outputs: Record<string, unknown> }>(`SELECT failures, outputs FROM cairn.task_instance WHERE run_id = $1 AND task_id = 'fit'`, [runId])
  assert.equal(ti[0]!.failures, 0, 'no failure counted')
  assert.equal(ti[0]!.outputs.job_id, submittedId)
  const lines = (await logLines(engine.db, runId, 'fit')).map((l) => l.line)
  assert.ok(lines.some((l) => l.includes(`found Slurm job ${submittedId} (${intent.jobName})`)), lines.join('\n'))
  assert.ok(lines.some((l) => l.includes('hello-0')) && lines.some((l) => l.includes('hello-1')), lines.join('\n'))

  await t.test('killed after recording the name, before sbatch submitted anything: the next worker submits it, once', async () => {
    // Only the dying worker may take the next run.
    await new Promise<void>((resolve) => {
      second.once('exit', () => resolve())
      second.kill('SIGTERM')
    })
    const early = fakeSbatch(path.join(engine.dir, 'dying-early-bin'), ['kill -KILL "$PPID"', 'sleep 5', 'exit 1'])
    const before = new Set((await allJobs()).map(([id]) => id))
    const dying = engine.spawnWorker({ env: { ...slurmEnv, PATH: `${early}:${process.env.PATH}` }, args: ['--heartbeat', '0.5'] })
    const dyingExit = new Promise<NodeJS.Signals | null>((resolve) => dying.once('exit', (_code, signal) => resolve(signal)))
    const id = await engine.trigger('slurm_once')
    assert.equal(await dyingExit, 'SIGKILL', 'the worker died inside sbatch')
    const { rows: [left] } = await engine.db.query<{ executor_handle: (JobHandle & { executor: 'slurm' }) | null }>(`SELECT executor_handle FROM cairn.attempt WHERE run_id = $1 AND task_id = 'fit'`, [id])
    const named = left!.executor_handle!
    assert.equal(named.jobId, '')
    assert.deepEqual((await allJobs()).filter(([job]) => !before.has(job)), [], 'nothing was submitted')

    engine.spawnWorker({ env: slurmEnv, args: ['--heartbeat', '0.5'] })
    assert.equal(await engine.waitForRun(id, 180_000), 'success')
    const { rows } = await engine.db.query<{ attempt: number; executor_handle: JobHandle & { executor: 'slurm' } }>(`SELECT attempt, executor_handle FROM cairn.attempt WHERE run_id = $1 AND task_id = 'fit'`, [id])
    assert.equal(rows.length, 1, 'one attempt')
    const jobs = (await allJobs()).filter(([job]) => !before.has(job))
    assert.deepEqual(jobs, [[rows[0]!.executor_handle.jobId, rows[0]!.executor_handle.jobName, 'COMPLETED']], 'exactly one Slurm job')
    assert.notEqual(rows[0]!.executor_handle.jobName, named.jobName, 'submitted under a name of its own, recorded before its sbatch')
    const lines = (await logLines(engine.db, id, 'fit')).map((l) => l.line)
    assert.ok(lines.some((l) => l.includes(`no Slurm job named ${named.jobName} exists`)), lines.join('\n'))
  })

  await t.test('a worker draining between recording the id and releasing the job: the next one releases it', async () => {
    const executor = createSlurmExecutor(undefined, { name: null, env: { ...process.env, ...slurmEnv }, keepJobsOnShutdown: true })
    const workdir = path.join(engine.dir, 'drained-held')
    const spec = { argv: ['sh', '-c', 'echo ran > ran.txt'], env: {}, nodes: 1, tasksPerNode: 1, gpusPerNode: 0, workdir, artifacts: ['ran.txt'], artifactsDir: path.join(engine.dir, 'drained-held-artifacts') }
    const drain = new AbortController()
    let handle: (JobHandle & { executor: 'slurm' }) | undefined
    const job = await executor.start(spec, {
      onLine: () => undefined,
      signal: drain.signal,
      record: async (h) => {
        const recorded = h as JobHandle & { executor: 'slurm' }
        handle = recorded
        // The worker drains right after the id is recorded, before it releases the job.
        if (recorded.jobId !== '') drain.abort(taskAbort('shutdown', 'draining'))
      },
    })
    const left = await job.done
    assert.equal(left.ok, false)
    assert.match(!left.ok ? left.message : '', /keeps running and is re-attached/)
    assert.match(await slurm(['scontrol', 'show', 'job', '-o', handle!.jobId]), /JobState=PENDING .*Reason=JobHeldUser/)
    const lines: string[] = []
    const followed = await executor.reattach(handle!, { onLine: (l) => void lines.push(l.line), signal: new AbortController().signal, spec, record: async () => undefined })
    // A held job that nobody releases would be followed forever: bounded here so that the test fails instead.
    let timer: NodeJS.Timeout | undefined
    const outcome = await Promise.race([followed.done, new Promise<'still held'>((resolve) => (timer = setTimeout(() => resolve('still held'), 60_000)))])
    clearTimeout(timer)
    if (outcome === 'still held') await followed.cancel('cancelled')
    assert.ok(outcome !== 'still held' && outcome.ok, JSON.stringify({ outcome, lines }))
    assert.equal(readFileSync(path.join(workdir, 'ran.txt'), 'utf8'), 'ran\n')
  })
})

/** A folder holding an executable `sbatch` made of these shell lines, to put first on a worker's PATH. */
function fakeSbatch(dir: string, lines: string[]): string {
  mkdirSync(dir)
  writeFileSync(path.join(dir, 'sbatch'), ['#!/bin/sh', ...lines, ''].join('\n'))
  chmodSync(path.join(dir, 'sbatch'), 0o755)
  return dir
}
