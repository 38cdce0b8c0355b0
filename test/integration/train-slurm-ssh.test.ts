/**
 * `train` with `executor: slurm` on a cluster that submits on its login node over SSH (`local_slurm_ssh` of the
 * local cluster's fragment), through real `cairn worker` processes that have no SLURM_CONF and no Slurm
 * configuration of their own: the Slurm commands run on the login node (127.0.0.2) with the SLURM_CONF of
 * `submit.env`.
 * - A 2-node job runs a rank on each node (both node names in the task log), its artifacts come back over
 *   SFTP and its model is registered.
 * - Its worker SIGKILLed mid-job, the next worker re-attaches through the login node: one attempt, one job.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { startTestEngine } from '../helpers/engine.ts'
import { killAndWait, spawnWorkerFor } from '../helpers/engine-extra.ts'
import { localClusterSkipReason, slurmCommands, startLocalClusterFor } from '../helpers/local-cluster.ts'
import { writeOnnxModel } from '../helpers/onnx-models.ts'
import { attemptRows, logLines, waitFor, waitForDags } from '../helpers/run-rows.ts'
import { loadConfig } from '../../engine/config/load-config.ts'
import type { JobHandle } from '../../engine/executors/executor.ts'

const skip = localClusterSkipReason()

test('train on a Slurm cluster reached over SSH: 2 nodes, artifacts, a registered model; a killed worker\'s job is re-attached', { skip, timeout: 400_000 }, async (t) => {
  const { dir, fragment, slurmConf } = await startLocalClusterFor(t)
  const loaded = loadConfig(fragment)
  assert.ok(loaded.ok, JSON.stringify(loaded.diagnostics))
  const { jobState, allJobs } = slurmCommands(slurmConf)

  // A model file the job copies (rank 0), readable by the login user the job runs as.
  const fixtures = path.join(dir, 'fixtures')
  mkdirSync(fixtures, { mode: 0o755 })
  const model = writeOnnxModel(path.join(fixtures, 'model.onnx'), 'logistic', { w: [[0.5], [-0.25]], b: [0.1] })
  chmodSync(model, 0o644)
  const workRoot = (loaded.config.clusters!.local_slurm_ssh as { workdir: string }).workdir

  const engine = await startTestEngine(t, {
    scheduler: { loopMs: 200, syncEveryMs: 300, lostAfterMs: 3000 },
    dags: {
      'ssh_submit.yaml': [
        'dag: ssh_submit',
        'tasks:',
        '  fit:',
        '    operator: train',
        '    params:',
        '      executor: slurm',
        '      cluster: local_slurm_ssh',
        '      nodes: 2',
        `      command: [sh, -c, ${JSON.stringify(`echo "rank $RANK of $WORLD_SIZE on $SLURMD_NODENAME as $(id -un)"; if [ "$RANK" = 0 ]; then cp ${model} model.onnx && echo '{"auc": 0.75}' > metrics.json; fi`)}]`,
        '      artifacts: [model.onnx, metrics.json]',
        '      model_name: ssh_points',
        '',
      ].join('\n'),
      'ssh_nap.yaml': [
        'dag: ssh_nap',
        'tasks:',
        '  fit:',
        '    operator: train',
        '    params:',
        '      executor: slurm',
        '      cluster: local_slurm_ssh',
        '      nodes: 2',
        `      command: [sh, -c, ${JSON.stringify('echo "begin-$RANK"; while [ ! -e go-on ]; do sleep 0.2; done; echo "end-$RANK"; if [ "$RANK" = 0 ]; then echo done > done.txt; fi')}]`,
        '      artifacts: [done.txt]',
        '',
      ].join('\n'),
    },
  })
  // The workers read cairn.yaml from their folder: the local cluster's fragment. Their environment has no SLURM_CONF.
  writeFileSync(path.join(engine.dir, 'cairn.yaml'), readFileSync(fragment, 'utf8'))
  assert.equal(process.env.SLURM_CONF, undefined)
  await waitForDags(engine.db, ['ssh_submit', 'ssh_nap'])
  // A worker process for one subtest, following its jobs closely (SIGKILLed when the subtest ends).
  const worker = (st: test.TestContext) => spawnWorkerFor(st, engine, { args: ['--heartbeat', '0.5'] })

  await t.test('a 2-node job: a rank on each node, artifacts over SFTP, the model registered', async (st) => {
    const submitter = worker(st)
    const runId = await engine.trigger('ssh_submit')
    const state = await engine.waitForRun(runId, 180_000)
    const text = (await logLines(engine.db, runId, 'fit')).map((l) => l.line).join('\n')
    assert.equal(state, 'success', text)
    assert.match(text, /rank 0 runs on n1/)
    assert.match(text, /rank 1 runs on n2/)
    assert.match(text, /\[rank 0\] rank 0 of 2 on n1 as cairn-ssh$/m)
    assert.match(text, /\[rank 1\] rank 1 of 2 on n2 as cairn-ssh$/m)
    const { rows } = await engine.db.query<{ outputs: { job_id: string; model_version: number; model_uri: string; metrics: { auc: number } } }>(`SELECT outputs FROM cairn.task_instance WHERE run_id = $1 AND task_id = 'fit'`, [runId])
    const outputs = rows[0]!.outputs
    assert.equal(outputs.model_version, 1)
    assert.equal(outputs.metrics.auc, 0.75)
    assert.equal(await jobState(outputs.job_id), 'COMPLETED')
    const { rows: versions } = await engine.db.query<{ sha256: string }>(`SELECT sha256 FROM cairn.model_version WHERE model = 'ssh_points'`)
    assert.equal(versions.length, 1)
    assert.equal(versions[0]!.sha256, createHash('sha256').update(readFileSync(model)).digest('hex'), 'the registered model is the job\'s file')
    await killAndWait(submitter, 'SIGTERM')
  })

  await t.test('a worker SIGKILLed mid-job: the next one re-attaches over SSH; one attempt, one Slurm job', async (st) => {
    const jobsBefore = new Set(await allJobs())
    const first = worker(st)
    const runId = await engine.trigger('ssh_nap')
    await waitFor('the job to run on both nodes', async () => {
      const lines = (await logLines(engine.db, runId, 'fit')).map((l) => l.line)
      return lines.some((l) => l.includes('begin-0')) && lines.some((l) => l.includes('begin-1')) ? true : undefined
    }, 180_000)
    const { rows: [recorded] } = await engine.db.query<{ executor_handle: JobHandle & { executor: 'slurm' }; worker_id: string }>(`SELECT executor_handle, worker_id FROM cairn.attempt WHERE run_id = $1 AND task_id = 'fit'`, [runId])
    const jobId = recorded!.executor_handle.jobId
    assert.equal(recorded!.executor_handle.cluster, 'local_slurm_ssh')
    await killAndWait(first, 'SIGKILL')
    assert.equal(await jobState(jobId), 'RUNNING', 'the job outlived its worker')

    const second = worker(st)
    await waitFor('the new worker to re-attach', async () => ((await logLines(engine.db, runId, 'fit')).some((l) => l.line.includes(`re-attached to Slurm job ${jobId} (RUNNING) through the login node local_login`)) ? true : undefined), 120_000)
    writeFileSync(path.join(workRoot, runId, 'fit', '1', 'go-on'), '')
    assert.equal(await engine.waitForRun(runId, 120_000), 'success', JSON.stringify(await attemptRows(engine.db, runId, 'fit')))
    const attempts = await attemptRows(engine.db, runId, 'fit')
    assert.deepEqual(attempts.map((a) => [a.attempt, a.state]), [[1, 'success']])
    const { rows: [after] } = await engine.db.query<{ executor_handle: JobHandle; worker_id: string }>(`SELECT executor_handle, worker_id FROM cairn.attempt WHERE run_id = $1 AND task_id = 'fit'`, [runId])
    assert.deepEqual(after!.executor_handle, recorded!.executor_handle, 'the same job, re-attached')
    assert.notEqual(after!.worker_id, recorded!.worker_id)
    assert.equal(await jobState(jobId), 'COMPLETED')
    assert.deepEqual((await allJobs()).filter((id) => !jobsBefore.has(id)), [jobId], 'exactly one Slurm job for the run')
    const lines = (await logLines(engine.db, runId, 'fit')).map((l) => l.line)
    assert.ok(lines.some((l) => l.includes('end-0')) && lines.some((l) => l.includes('end-1')), lines.join('\n'))
    await killAndWait(second, 'SIGTERM')
  })
})
