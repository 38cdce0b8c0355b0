/**
 * Re-attach on the real local cluster (deploy/local-cluster): a remote training job outlives its worker.
 * - A 2-node Slurm `train` task; its `cairn worker` process is SIGKILLed mid-job; the scheduler's
 *   lost-worker rule hands the same attempt to a new worker, which re-attaches to the job: the run
 *   completes with one attempt and one Slurm job id in total (checked with Slurm itself).
 * - The handle is fenced by the claim: an attempt cancelled before its job is recorded never runs a job.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { startTestEngine } from '../helpers/engine.ts'
import { killAndWait, spawnWorkerFor } from '../helpers/engine-extra.ts'
import { localClusterSkipReason, slurmCommands, startLocalClusterFor } from '../helpers/local-cluster.ts'
import { attemptRows, logLines, waitFor, waitForDags } from '../helpers/run-rows.ts'
import { loadConfig } from '../../engine/config/load-config.ts'
import { claimAttempt, recordExecutorHandle } from '../../engine/store/attempts.ts'
import { cancelRun } from '../../engine/store/control.ts'
import { createSlurmExecutor } from '../../engine/executors/slurm.ts'
import type { JobHandle } from '../../engine/executors/executor.ts'

const skip = localClusterSkipReason()

test('train on Slurm: a SIGKILLed worker\'s job is re-attached by the next worker (one attempt, one job); the handle is fenced', { skip, timeout: 300_000 }, async (t) => {
  const { dir, fragment, slurmConf } = await startLocalClusterFor(t)
  const loaded = loadConfig(fragment)
  assert.ok(loaded.ok, JSON.stringify(loaded.diagnostics))
  const slurmEnv = { SLURM_CONF: slurmConf }
  const { jobState, allJobs } = slurmCommands(slurmConf)

  // The job sleeps long enough for a worker to be killed and another to take over, then leaves a file.
  const script = 'echo "begin-$RANK"; sleep "$NAP"; echo "end-$RANK"; if [ "$RANK" = 0 ]; then echo done > done.txt; fi'
  const engine = await startTestEngine(t, {
    scheduler: { loopMs: 200, syncEveryMs: 300, lostAfterMs: 3000 },
    dags: {
      'slurm_fit.yaml': [
        'dag: slurm_fit',
        'params:',
        '  nap: { type: integer, default: 10 }',
        'tasks:',
        '  fit:',
        '    operator: train',
        '    retries: 2',
        '    env: { NAP: "{{ params.nap }}" }',
        '    params:',
        '      executor: slurm',
        '      cluster: local_slurm',
        '      nodes: 2',
        `      command: [sh, -c, ${JSON.stringify(script)}]`,
        '      artifacts: [done.txt]',
        '',
      ].join('\n'),
      'ssh_fit.yaml': [
        'dag: ssh_fit',
        'tasks:',
        '  fit:',
        '    operator: train',
        '    params:',
        '      executor: ssh',
        '      cluster: local_ssh',
        '      nodes: 2',
        `      command: [sh, -c, ${JSON.stringify('echo "begin-$RANK"; while [ ! -f go-on ]; do sleep 0.2; done; echo "end-$RANK"; if [ "$RANK" = 0 ]; then echo done > done.txt; fi')}]`,
        '      artifacts: [done.txt]',
        '',
      ].join('\n'),
    },
  })
  // The worker processes read cairn.yaml from their folder: the local cluster's fragment.
  writeFileSync(path.join(engine.dir, 'cairn.yaml'), readFileSync(fragment, 'utf8'))
  await waitForDags(engine.db, ['slurm_fit'])
  const jobsBefore = new Set(await allJobs())

  const first = engine.spawnWorker({ env: slurmEnv, args: ['--heartbeat', '0.5'] })
  const runId = await engine.trigger('slurm_fit')
  const attempt = async () => (await engine.db.query<{ attempt: number; state: string; worker_id: string | null; executor_handle: JobHandle | null; executor_state: { state?: string; job_id?: string; ranks: { rank: number; host: string }[] } | null }>(
    `SELECT attempt, state, worker_id, executor_handle, executor_state FROM cairn.attempt WHERE run_id = $1 AND task_id = 'fit' ORDER BY attempt`, [runId])).rows
  // Killed once the job runs on both nodes (both ranks wrote their first line).
  await waitFor('the job to run on both nodes', async () => {
    const lines = (await logLines(engine.db, runId, 'fit')).map((l) => l.line)
    return lines.some((l) => l.includes('begin-0')) && lines.some((l) => l.includes('begin-1')) ? true : undefined
  }, 120_000)
  const [recorded] = await attempt()
  assert.equal(recorded!.executor_handle?.executor, 'slurm')
  const jobId = (recorded!.executor_handle as JobHandle & { executor: 'slurm' }).jobId
  assert.match(jobId, /^\d+$/)
  assert.equal(recorded!.executor_state?.job_id, jobId)
  await killAndWait(first, 'SIGKILL')
  assert.equal(await jobState(jobId), 'RUNNING', 'the job outlived its worker')

  const second = engine.spawnWorker({ env: slurmEnv, args: ['--heartbeat', '0.5'] })
  assert.equal(await engine.waitForRun(runId, 120_000), 'success', JSON.stringify(await attempt()))
  const attempts = await attempt()
  assert.equal(attempts.length, 1, `one attempt: ${JSON.stringify(attempts)}`)
  assert.equal(attempts[0]!.state, 'success')
  assert.deepEqual(attempts[0]!.executor_handle, recorded!.executor_handle, 'the same job, re-attached')
  assert.notEqual(attempts[0]!.worker_id, recorded!.worker_id, 'finished by the second worker')
  assert.equal(attempts[0]!.executor_state?.state, 'COMPLETED')
  assert.deepEqual(attempts[0]!.executor_state?.ranks.map((r) => r.host).sort(), ['n1', 'n2'])
  assert.equal(await jobState(jobId), 'COMPLETED')
  const newJobs = (await allJobs()).filter((id) => !jobsBefore.has(id))
  assert.deepEqual(newJobs, [jobId], 'exactly one Slurm job for the run')
  const lines = (await logLines(engine.db, runId, 'fit')).map((l) => l.line)
  assert.ok(lines.some((l) => l.includes(`re-attached to Slurm job ${jobId}`)), lines.join('\n'))
  assert.ok(lines.some((l) => l.includes('end-0')) && lines.some((l) => l.includes('end-1')), lines.join('\n'))
  const { rows: history } = await engine.db.query<{ to_state: string; reason: string | null }>(`SELECT to_state, reason FROM cairn.state_history WHERE run_id = $1 AND task_id = 'fit' ORDER BY id`, [runId])
  assert.ok(history.some((h) => h.to_state === 'queued' && /taken over by another worker/.test(h.reason ?? '')), JSON.stringify(history))
  const { rows: ti } = await engine.db.query<{ failures: number; outputs: Record<string, unknown> }>(`SELECT failures, outputs FROM cairn.task_instance WHERE run_id = $1 AND task_id = 'fit'`, [runId])
  assert.equal(ti[0]!.failures, 0, 'no failure counted')
  assert.equal(ti[0]!.outputs.job_id, jobId)

  // A worker process for one subtest (SIGKILLed when the subtest ends).
  const worker = (st: test.TestContext, ...args: string[]) => spawnWorkerFor(st, engine, { env: slurmEnv, args: ['--heartbeat', '0.5', ...args] })
  const runningJob = async (id: string) => {
    await waitFor('the job to run on both nodes', async () => {
      const lines = (await logLines(engine.db, id, 'fit')).map((l) => l.line)
      return lines.some((l) => l.includes('begin-0')) && lines.some((l) => l.includes('begin-1')) ? true : undefined
    }, 120_000)
    const { rows } = await engine.db.query<{ executor_handle: JobHandle & { executor: 'slurm' } }>(`SELECT executor_handle FROM cairn.attempt WHERE run_id = $1 AND task_id = 'fit'`, [id])
    return rows[0]!.executor_handle.jobId
  }

  await t.test('a draining worker leaves the job running and hands the attempt back; the next worker re-attaches', async (st) => {
    await killAndWait(second, 'SIGTERM')
    const before = new Set(await allJobs())
    const draining = worker(st, '--grace', '1')
    // Long enough to outlast the drain on a loaded machine.
    const id = await engine.trigger('slurm_fit', { nap: 25 })
    const job = await runningJob(id)
    await killAndWait(draining, 'SIGTERM')
    assert.equal(await jobState(job), 'RUNNING', 'the drained worker left its job running')
    const { rows } = await engine.db.query<{ state: string; executor_handle: JobHandle & { executor: 'slurm' } }>(`SELECT state, executor_handle FROM cairn.attempt WHERE run_id = $1 AND task_id = 'fit'`, [id])
    assert.deepEqual(rows.map((r) => [r.state, r.executor_handle.jobId]), [['queued', job]], 'handed back with its job')
    const next = worker(st)
    assert.equal(await engine.waitForRun(id, 120_000), 'success')
    const attempts = await attemptRows(engine.db, id, 'fit')
    assert.deepEqual(attempts.map((a) => [a.attempt, a.state]), [[1, 'success']])
    assert.deepEqual((await allJobs()).filter((j) => !before.has(j)), [job], 'exactly one Slurm job for the run')
    await killAndWait(next, 'SIGKILL')
  })

  await t.test('cancelling a run whose job was re-attached cancels the Slurm job', async (st) => {
    const starter = worker(st)
    const id = await engine.trigger('slurm_fit', { nap: 120 })
    const job = await runningJob(id)
    await killAndWait(starter, 'SIGKILL')
    const follower = worker(st)
    await waitFor('the new worker to re-attach', async () => ((await logLines(engine.db, id, 'fit')).some((l) => l.line.includes(`re-attached to Slurm job ${job}`)) ? true : undefined), 60_000)
    await engine.db.tx((q) => cancelRun(q, id, new Date(), 'test'))
    await waitFor('Slurm to cancel the job', async () => ((await jobState(job)) === 'CANCELLED' ? true : undefined), 30_000)
    assert.equal(await engine.waitForRun(id, 30_000), 'cancelled')
    await killAndWait(follower, 'SIGKILL')
  })

  await t.test('a run cancelled while no worker follows its job (the worker was killed): the next worker stops the job', async (st) => {
    const starter = worker(st)
    const id = await engine.trigger('slurm_fit', { nap: 120 })
    const job = await runningJob(id)
    await killAndWait(starter, 'SIGKILL')
    await engine.db.tx((q) => cancelRun(q, id, new Date(), 'test'))
    assert.equal(await engine.waitForRun(id, 30_000), 'cancelled')
    assert.equal(await jobState(job), 'RUNNING', 'nobody could stop it yet')
    worker(st) // the next worker
    await waitFor('a worker to cancel the orphaned job', async () => ((await jobState(job)) === 'CANCELLED' ? true : undefined), 60_000)
    await waitFor('its final state to be recorded', async () => {
      const { rows } = await engine.db.query<{ s: string | null }>(`SELECT executor_state->>'state' AS s FROM cairn.attempt WHERE run_id = $1`, [id])
      return rows[0]!.s === 'CANCELLED' ? true : undefined
    })
    assert.deepEqual((await attemptRows(engine.db, id, 'fit')).map((a) => a.state), ['cancelled'])
  })

  await t.test('SSH: a draining worker detaches from its ranks, which run on; the next worker re-attaches and gets their exit statuses', async (st) => {
    const draining = worker(st, '--grace', '1')
    const id = await engine.trigger('ssh_fit')
    await runningJob(id)
    const { rows } = await engine.db.query<{ executor_handle: JobHandle & { executor: 'ssh' } }>(`SELECT executor_handle FROM cairn.attempt WHERE run_id = $1`, [id])
    const pgids = rows[0]!.executor_handle.processes.map((p) => p.pgid)
    assert.equal(pgids.length, 2)
    await killAndWait(draining, 'SIGTERM')
    const alive = (pgid: number) => {
      try {
        process.kill(-pgid, 0)
        return true
      } catch {
        return false
      }
    }
    const { rows: after } = await engine.db.query<{ state: string }>(`SELECT state FROM cairn.attempt WHERE run_id = $1`, [id])
    assert.deepEqual(after.map((r) => r.state), ['queued'], 'handed back with its job')
    assert.ok(pgids.every(alive), 'the ranks run on after their worker left')
    // Let the ranks finish; the next worker finds them ended and reads their exit statuses.
    writeFileSync(path.join(dir, 'work', 'ssh', id, 'fit', '1', 'go-on'), '')
    await waitFor('the ranks to end', async () => (pgids.every((pgid) => !alive(pgid)) ? true : undefined), 30_000)
    worker(st) // the next worker
    assert.equal(await engine.waitForRun(id, 60_000), 'success', JSON.stringify(await attemptRows(engine.db, id, 'fit')))
    assert.deepEqual((await attemptRows(engine.db, id, 'fit')).map((a) => [a.attempt, a.state]), [[1, 'success']])
    const lines = (await logLines(engine.db, id, 'fit')).map((l) => l.line)
    assert.ok(lines.some((l) => l.includes('every recorded rank has ended')), lines.join('\n'))
    const { rows: ti } = await engine.db.query<{ outputs: Record<string, unknown> }>(`SELECT outputs FROM cairn.task_instance WHERE run_id = $1`, [id])
    assert.ok(ti[0]!.outputs !== null)
  })

  await t.test('an attempt cancelled before its job is recorded runs no job', async () => {
    // Claimed by the test itself: no worker runs now.
    await killAndWait(second, 'SIGKILL')
    const cancelled = await engine.trigger('slurm_fit')
    let claim: Awaited<ReturnType<typeof claimAttempt>>
    await waitFor('the attempt to be queued', async () => {
      claim = await claimAttempt(engine.db, { runId: cancelled, taskId: 'fit', attempt: 1 }, 'test-worker', new Date())
      return claim ? true : undefined
    })
    await engine.db.tx((q) => cancelRun(q, cancelled, new Date(), 'test'))
    const executor = createSlurmExecutor(loaded.config.clusters!.local_slurm as never, { name: 'local_slurm', env: { ...process.env, ...slurmEnv } })
    const workdir = path.join(dir, 'work', 'fenced')
    let handle: JobHandle | undefined
    const jobsBeforeFenced = new Set(await allJobs())
    const job = await executor.start(
      { argv: ['sh', '-c', 'touch ran.txt'], env: {}, nodes: 1, tasksPerNode: 1, gpusPerNode: 0, workdir, artifacts: [], artifactsDir: path.join(dir, 'work', 'fenced-artifacts') },
      {
        onLine: () => undefined,
        signal: new AbortController().signal,
        record: async (h) => {
          handle = h
          if (!(await recordExecutorHandle(engine.db, claim!.claimId, h as unknown as Record<string, unknown>))) throw new Error('the attempt no longer holds its claim')
        },
      },
    )
    const outcome = await job.done
    assert.equal(outcome.ok, false)
    // The job's name is recorded before sbatch is sent: refused, so nothing is submitted at all.
    assert.match(!outcome.ok ? outcome.message : '', /could not be recorded.*nothing was submitted/)
    assert.equal((handle as JobHandle & { executor: 'slurm' }).jobId, '')
    assert.deepEqual((await allJobs()).filter((id) => !jobsBeforeFenced.has(id)), [], 'no job submitted')
    assert.equal(existsSync(path.join(workdir, 'ran.txt')), false, 'the job never ran')
    const [row] = await attemptRows(engine.db, cancelled, 'fit')
    assert.equal(row!.state, 'cancelled')
    const { rows } = await engine.db.query<{ executor_handle: unknown }>(`SELECT executor_handle FROM cairn.attempt WHERE run_id = $1`, [cancelled])
    assert.equal(rows[0]!.executor_handle, null, 'nothing recorded for a cancelled attempt')
  })
})
