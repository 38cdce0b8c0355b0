/**
 * `train` with `executor: ssh` through the engine, on the real local cluster: a cluster of cairn.yaml
 * (the fragment `deploy/local-cluster/start` prints) runs one rank per host with the rank
 * environment, in a folder of the attempt under the cluster's work root, and the ranks get the
 * task's env, never the worker's own environment.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { startTestEngine } from '../helpers/engine.ts'
import { localClusterSkipReason, startLocalClusterFor } from '../helpers/local-cluster.ts'
import { loadConfig } from '../../engine/config/load-config.ts'

const skip = localClusterSkipReason()

test('train on the ssh cluster of cairn.yaml: one rank per host, rank environment, no worker environment', { skip, timeout: 240_000 }, async (t) => {
  const { fragment } = await startLocalClusterFor(t)
  const loaded = loadConfig(fragment)
  assert.ok(loaded.ok, JSON.stringify(loaded.diagnostics))
  process.env.CAIRN_TEST_WORKER_SECRET = 'worker-only'
  t.after(() => delete process.env.CAIRN_TEST_WORKER_SECRET)

  const engine = await startTestEngine(t, {
    inProcessWorkers: 1,
    config: { clusters: loaded.config.clusters! },
    dags: {
      'ssh_train.yaml': [
        'dag: ssh_train',
        'tasks:',
        '  fit:',
        '    operator: train',
        '    env: { GREETING: "hello from {{ dag.id }}" }',
        '    params:',
        '      executor: ssh',
        '      cluster: local_ssh',
        '      nodes: 2',
        '      command: [sh, -c, \'echo "rank=$RANK world=$WORLD_SIZE node=$NODE_RANK master=$MASTER_ADDR greeting=$GREETING secret=${CAIRN_TEST_WORKER_SECRET:-none} pwd=$(pwd)"\']',
        '',
      ].join('\n'),
    },
  })
  let runId: string | undefined
  for (const deadline = Date.now() + 30_000; !runId && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    const { rows } = await engine.db.query<{ dag_id: string }>(`SELECT dag_id FROM cairn.dag WHERE dag_id = 'ssh_train' AND version_id IS NOT NULL`)
    if (rows.length > 0) runId = await engine.trigger('ssh_train')
  }
  assert.ok(runId)
  const state = await engine.waitForRun(runId, 120_000)
  const { rows: logs } = await engine.db.query<{ line: string }>(`SELECT line FROM cairn.task_log WHERE run_id = $1 AND task_id = 'fit' ORDER BY id`, [runId])
  const text = logs.map((l) => l.line).join('\n')
  assert.equal(state, 'success', text)
  for (const rank of [0, 1]) {
    assert.match(text, new RegExp(`\\[rank ${rank}\\] rank=${rank} world=2 node=${rank} master=127\\.0\\.0\\.2 greeting=hello from ssh_train secret=none pwd=\\S+/${runId}/fit/1`))
  }
})
