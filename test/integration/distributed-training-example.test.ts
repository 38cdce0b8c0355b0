/**
 * The README's steps for dags/distributed_training.yaml ("Trying multi-node training on one machine"), run as a
 * user runs them: deploy/local-cluster/start, its env file for SLURM_CONF, CAIRN_CONFIG=cairn.yaml:<the fragment
 * start printed>, `cairn up`, `cairn trigger distributed_training --wait`, then `cairn logs` and `cairn models`.
 * The cluster gets its own folder and ports (as every test file's), and the DAG folder holds only this example
 * (the other examples would start their own runs); everything else is the repository's own: its cairn.yaml, the
 * DAG file byte for byte, the CLI.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { localClusterSkipReason, startLocalClusterFor } from '../helpers/local-cluster.ts'
import { startCairnUp } from '../helpers/cairn-up.ts'
import { waitFor } from '../helpers/engine-extra.ts'
import type { CommandResult } from '../helpers/engine-extra.ts'

const skip = localClusterSkipReason()
const REPO = path.resolve(import.meta.dirname, '../..')

test('dags/distributed_training.yaml runs on the local cluster as the README shows', { skip, timeout: 600_000 }, async (t) => {
  // sudo deploy/local-cluster/start    (last line: the fragment); . /tmp/cairn-local-cluster/env
  const cluster = await startLocalClusterFor(t)

  const work = mkdtempSync(path.join(tmpdir(), 'cairn-distributed-example-'))
  // As root the embedded Postgres runs as user postgres, which must be able to enter the folder.
  chmodSync(work, 0o755)
  mkdirSync(path.join(work, 'dags'))
  copyFileSync(path.join(REPO, 'dags/distributed_training.yaml'), path.join(work, 'dags/distributed_training.yaml'))
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SLURM_CONF: cluster.slurmConf,
    // export CAIRN_CONFIG=cairn.yaml:/tmp/cairn-local-cluster/cairn.yaml
    CAIRN_CONFIG: `cairn.yaml:${cluster.fragment}`,
    CAIRN_HOME: path.join(work, 'home'),
    CAIRN_DAGS: path.join(work, 'dags'),
    CAIRN_LOG_LEVEL: process.env.CAIRN_TEST_LOG || 'warn',
  }
  for (const name of ['DATABASE_URL', 'CAIRN_PORT']) delete env[name]

  // npm start (cairn up), from the checkout
  const up = await startCairnUp(t, env, { afterStop: () => rmSync(work, { recursive: true, force: true }) })
  const cairn = up.cli
  // npx cairn trigger distributed_training --wait (once the scheduler has loaded the DAG)
  const triggered: CommandResult = await waitFor('the DAG to be loaded and its run to end', async () => {
    const r = await cairn(['trigger', 'distributed_training', '--wait'])
    return /no DAG "distributed_training"/.test(r.stderr) ? undefined : r
  }, 480_000, 500)
  const runId = triggered.stdout.trim().split('\n').at(-1)!
  const logs = async (task: string) => (await cairn(['logs', runId, task])).stdout
  assert.equal(triggered.code, 0, `${triggered.stdout}\n${triggered.stderr}\ntrain_slurm:\n${await logs('train_slurm')}\ntrain_ssh:\n${await logs('train_ssh')}\ncairn up:\n${up.stderr()}`)

  // A rank on each Slurm node and on each SSH host, both in the log.
  const slurm = await logs('train_slurm')
  assert.match(slurm, /rank [01] runs on n1\b/, slurm)
  assert.match(slurm, /rank [01] runs on n2\b/, slurm)
  assert.match(slurm, /\[rank 1\] cairn-train\[1\/2\] trained \d+ rows/, slurm)
  const ssh = await logs('train_ssh')
  assert.match(ssh, /rank [01] runs on 127\.0\.0\.2\b/, ssh)
  assert.match(ssh, /rank [01] runs on 127\.0\.0\.3\b/, ssh)
  for (const text of [slurm, ssh]) assert.match(text, /registered model version \{"model":"points","version":[12],/, text)

  // npx cairn models show points: a candidate trained by this run, with its lineage and metrics.
  const shown = await cairn(['models', 'show', 'points', '--format', 'json'])
  assert.equal(shown.code, 0, shown.stderr)
  const model = JSON.parse(shown.stdout)
  assert.equal(model.version, 2)
  assert.equal(model.stage, 'candidate')
  assert.equal(model.lineage.run, runId)
  assert.deepEqual(model.lineage.dataset, { name: 'points', version: 1 })
  assert.equal(model.metrics.world_size, 2)
  assert.ok(model.metrics.validation.auc > 0.9, `validation AUC ${model.metrics.validation.auc}`)
})
