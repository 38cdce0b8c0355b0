/**
 * The churn example's cluster variant (dags/churn_model_slurm.yaml) as the README runs it: the local cluster
 * started (deploy/local-cluster/start), CAIRN_CONFIG=cairn.yaml:<the fragment>, `cairn up`; dags/churn_data.yaml
 * catches up on the real clock and builds the training set; then `cairn unpause churn_model_slurm` and
 * `cairn trigger churn_model_slurm --wait`: no `churn_slurm` model is in production, which counts as drift, so
 * the built-in trainer runs as a 2-node Slurm job (a rank on n1 and on n2, reading the training set's files from
 * the shared datasets folder), the gate passes and the canary rollout promotes it.
 * The DAG folder holds the churn files only; the one change to them: the rollout's 20 s steps become 2 s.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { localClusterSkipReason, startLocalClusterFor } from '../helpers/local-cluster.ts'
import { startCairnUp } from '../helpers/cairn-up.ts'
import { waitFor } from '../helpers/engine-extra.ts'

const skip = localClusterSkipReason()
const REPO = path.resolve(import.meta.dirname, '../..')

test('dags/churn_model_slurm.yaml trains churn_slurm as a 2-node Slurm job on the local cluster and rolls it out', { skip, timeout: 600_000 }, async (t) => {
  const cluster = await startLocalClusterFor(t)

  const work = mkdtempSync(path.join(tmpdir(), 'cairn-churn-slurm-'))
  // As root the embedded Postgres runs as user postgres, which must be able to enter the folder.
  chmodSync(work, 0o755)
  const dags = path.join(work, 'dags')
  for (const name of ['churn_data.yaml', 'churn_model_slurm.yaml', 'features', 'data']) cpSync(path.join(REPO, 'dags', name), path.join(dags, name), { recursive: true })
  const variant = path.join(dags, 'churn_model_slurm.yaml')
  writeFileSync(variant, readFileSync(variant, 'utf8').replace('step_duration: 20s', 'step_duration: 2s'))
  assert.match(readFileSync(variant, 'utf8'), /step_duration: 2s/)
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SLURM_CONF: cluster.slurmConf,
    CAIRN_CONFIG: `cairn.yaml:${cluster.fragment}`,
    CAIRN_HOME: path.join(work, 'home'),
    CAIRN_DAGS: dags,
    CAIRN_LOG_LEVEL: process.env.CAIRN_TEST_LOG || 'warn',
  }
  for (const name of ['DATABASE_URL', 'CAIRN_PORT', 'CAIRN_SERVE_PORT']) delete env[name]

  const up = await startCairnUp(t, env, { args: ['--port', '0', '--serve-port', '0'], stopWithinMs: 60_000, afterStop: () => rmSync(work, { recursive: true, force: true }) })
  const cairn = up.cli
  const json = async (args: string[]): Promise<unknown> => {
    const r = await cairn([...args, '--format', 'json'])
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
    return JSON.parse(r.stdout)
  }

  // churn_data catches up to the latest interval, whose run builds the training set.
  await waitFor('churn_data to catch up and build the training set', async () => {
    const runs = (await cairn(['runs', 'churn_data', '--format', 'json']))
    if (runs.code !== 0) return undefined
    const list = JSON.parse(runs.stdout) as { state: string }[]
    assert.ok(!list.some((r) => r.state === 'failed'), runs.stdout)
    const versions = await cairn(['datasets', 'show', 'churn_training', '--format', 'json'])
    return versions.code === 0 && list.length > 0 && list.every((r) => r.state === 'success') ? true : undefined
  }, 420_000, 1000)

  const unpaused = await cairn(['unpause', 'churn_model_slurm'])
  assert.equal(unpaused.code, 0, unpaused.stderr)
  const triggered = await cairn(['trigger', 'churn_model_slurm', '--wait'])
  const runId = triggered.stdout.trim().split('\n').at(-1)!
  const logs = async (task: string) => (await cairn(['logs', runId, task])).stdout
  assert.equal(triggered.code, 0, `${triggered.stdout}\n${triggered.stderr}\ntrain:\n${await logs('train')}\ngate:\n${await logs('gate')}\ncairn up:\n${up.stderr()}`)

  const train = await logs('train')
  assert.match(train, /rank [01] runs on n1\b/, train)
  assert.match(train, /rank [01] runs on n2\b/, train)
  assert.match(train, /\[rank 1\] cairn-train\[1\/2\] trained \d+ rows/, train)
  assert.match(await logs('drift'), /no production version of model churn_slurm/)

  const model = await json(['models', 'show', 'churn_slurm']) as { version: number; stage: string; lineage: { run: string; dataset: { name: string } }; metrics: { world_size: number; validation: { auc: number } } }
  assert.equal(model.version, 1)
  assert.equal(model.stage, 'production')
  assert.equal(model.lineage.run, runId)
  assert.equal(model.lineage.dataset.name, 'churn_training')
  assert.equal(model.metrics.world_size, 2, 'data-parallel over the two nodes')
  assert.ok(model.metrics.validation.auc >= 0.75, `validation AUC ${model.metrics.validation.auc}`)
  const scores = await json(['datasets', 'show', 'churn_slurm_scores']) as { rows: number }
  assert.ok(scores.rows > 0)
})
