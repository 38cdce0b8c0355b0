/**
 * The train operator under a real scheduler and worker, with the local executor: a 2-rank command
 * job gives every rank its torchrun environment (both ranks' lines in the task log, labelled), rank
 * 0's artifacts are collected and metrics.json becomes the `metrics` output; a timeout stops every
 * rank (no process left); an executor this version lacks fails as infrastructure.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { startTestEngine, taskWritableDir } from '../helpers/engine.ts'
import { attemptRows, logLines, taskRows, waitFor, waitForDags } from '../helpers/run-rows.ts'

function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return true
  }
}

test('train (local executor): rank environment, labelled lines, artifacts, metrics; timeout stops every rank; unknown executors', { timeout: 240_000 }, async (t) => {
  const engine = await startTestEngine(t, { dags: {}, inProcessWorkers: 1, scheduler: { loopMs: 200, syncEveryMs: 500 } })
  const files = taskWritableDir(join(engine.dir, 'files'))
  const report = `echo "env RANK=$RANK WORLD_SIZE=$WORLD_SIZE NODE_RANK=$NODE_RANK LOCAL_RANK=$LOCAL_RANK LOCAL_WORLD_SIZE=$LOCAL_WORLD_SIZE MASTER_ADDR=$MASTER_ADDR MASTER_PORT=$MASTER_PORT TASK=$CAIRN_TASK_ID"; if [ "$RANK" = 0 ]; then echo '{"auc": 0.9, "history": [1]}' > metrics.json; echo onnx > model.onnx; fi`
  engine.writeDag('ranks.yaml', `dag: ranks
tasks:
  fit:
    operator: train
    params:
      executor: local
      nodes: 1
      tasks_per_node: 2
      command: [/bin/sh, -c, ${JSON.stringify(report)}]
      artifacts: [model.onnx, metrics.json]
`)
  const slow = `sleep 300 & echo "$$ $!" > "${files}/rank-$RANK.pids"; wait`
  engine.writeDag('slow.yaml', `dag: slow
tasks:
  fit:
    operator: train
    timeout: 2s
    params:
      executor: local
      nodes: 2
      command: [/bin/sh, -c, ${JSON.stringify(slow)}]
`)
  engine.writeDag('elsewhere.yaml', `dag: elsewhere
tasks:
  fit:
    operator: train
    params:
      executor: slurm
      cluster: nowhere
      nodes: 1
      command: [/bin/true]
`)
  await waitFor('the DAGs to load', async () => {
    const { rows } = await engine.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM cairn.dag WHERE dag_id IN ('ranks', 'slow', 'elsewhere') AND version_id IS NOT NULL`)
    return rows[0]!.n === '3' ? true : undefined
  })

  const ranks = await engine.trigger('ranks')
  assert.equal(await engine.waitForRun(ranks, 60_000), 'success')
  const lines = (await logLines(engine.db, ranks, 'fit')).map((l) => l.line).filter((l) => l.includes(' env '))
  const port = /MASTER_PORT=(\d+)/.exec(lines[0] ?? '')?.[1]
  assert.ok(port && Number(port) > 0, JSON.stringify(lines))
  assert.deepEqual(lines.sort(), [
    `[rank 0] env RANK=0 WORLD_SIZE=2 NODE_RANK=0 LOCAL_RANK=0 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=${port} TASK=fit`,
    `[rank 1] env RANK=1 WORLD_SIZE=2 NODE_RANK=0 LOCAL_RANK=1 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=${port} TASK=fit`,
  ])
  const fit = (await taskRows(engine.db, ranks)).get('fit')!
  const { rows: out } = await engine.db.query<{ outputs: Record<string, unknown> }>(`SELECT outputs FROM cairn.task_instance WHERE run_id = $1 AND task_id = 'fit'`, [ranks])
  assert.equal(fit.state, 'success')
  assert.deepEqual(out[0]!.outputs.metrics, { auc: 0.9 })
  const modelUri = String(out[0]!.outputs.model_uri)
  assert.match(modelUri, /artifacts.*model\.onnx$/)
  assert.equal(readFileSync(modelUri, 'utf8'), 'onnx\n')

  const slowRun = await engine.trigger('slow')
  const started = Date.now()
  assert.equal(await engine.waitForRun(slowRun, 60_000), 'failed')
  assert.ok(Date.now() - started < 30_000)
  const [attempt] = await attemptRows(engine.db, slowRun, 'fit')
  assert.equal(attempt!.failure_kind, 'timeout')
  const pidFiles = readdirSync(files).filter((n) => n.endsWith('.pids')).sort()
  assert.deepEqual(pidFiles, ['rank-0.pids', 'rank-1.pids'])
  const pids = pidFiles.flatMap((n) => readFileSync(join(files, n), 'utf8').trim().split(' ').map(Number))
  assert.equal(pids.length, 4)
  for (const pid of pids) await waitFor(`pid ${pid} to be gone`, async () => (processGone(pid) ? true : undefined), 15_000)

  const other = await engine.trigger('elsewhere')
  assert.equal(await engine.waitForRun(other, 60_000), 'failed')
  const [failed] = await attemptRows(engine.db, other, 'fit')
  assert.equal(failed!.failure_kind, 'infrastructure')
  assert.equal(existsSync(files), true)
  const { rows: msg } = await engine.db.query<{ m: string }>(`SELECT row_to_json(a)::text AS m FROM cairn.attempt a WHERE run_id = $1`, [other])
  assert.match(msg[0]!.m, /cluster \\"nowhere\\" is not defined in cairn.yaml/)
})

test('train (trainer, 2 local ranks): trains on a dataset version and registers candidate versions with checksum and lineage', { timeout: 300_000 }, async (t) => {
  const { createDatasets } = await import('../../engine/data/datasets.ts')
  const { createModels, sha256File } = await import('../../engine/models/registry.ts')
  const { seedVersion } = await import('../helpers/datasets.ts')
  const engine = await startTestEngine(t, { dags: {}, inProcessWorkers: 1, scheduler: { loopMs: 200, syncEveryMs: 500 } })
  const datasets = createDatasets({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  // y = 1 when a + 2b > 0: learnable in a few epochs.
  const version = await seedVersion(datasets, 'toy', `SELECT a, b, (a + 2 * b > 0) AS y FROM (SELECT sin(i * 1.3) AS a, cos(i * 0.7) AS b FROM range(400) t(i))`)
  engine.writeDag('fit.yaml', `dag: fit
tasks:
  fit:
    operator: train
    params:
      executor: local
      nodes: 1
      tasks_per_node: 2
      trainer: { dataset: toy, label: y, task: binary, model: { kind: logistic }, epochs: 3, batch_size: 32, learning_rate: 0.1, seed: 1 }
      model_name: toy_model
`)
  engine.writeDag('bad_label.yaml', `dag: bad_label
tasks:
  fit:
    operator: train
    retries: 2
    retry_delay: 100ms
    params:
      executor: local
      nodes: 1
      tasks_per_node: 2
      trainer: { dataset: toy, label: nope, task: binary, model: { kind: logistic }, epochs: 1, batch_size: 32, learning_rate: 0.1 }
      model_name: toy_model
`)
  await waitForDags(engine.db, ['fit', 'bad_label'])
  // Bad data is not retried: the trainer's exit code 2 makes the failure data_invalid.
  const bad = await engine.trigger('bad_label')
  assert.equal(await engine.waitForRun(bad, 120_000), 'failed')
  const badAttempts = await attemptRows(engine.db, bad, 'fit')
  assert.deepEqual(badAttempts.map((a) => a.failure_kind), ['data_invalid'])
  assert.ok((await logLines(engine.db, bad, 'fit')).some((l) => /nope/.test(l.line)))
  const runId = await engine.trigger('fit')
  const state = await engine.waitForRun(runId, 120_000)
  const log = (await logLines(engine.db, runId, 'fit')).map((l) => l.line)
  assert.equal(state, 'success', log.join('\n'))
  assert.ok(log.some((l) => l.startsWith('[rank 0] ')) && log.some((l) => l.startsWith('[rank 1] ')), log.join('\n'))
  const { rows } = await engine.db.query<{ outputs: Record<string, unknown> }>(`SELECT outputs FROM cairn.task_instance WHERE run_id = $1 AND task_id = 'fit'`, [runId])
  const outputs = rows[0]!.outputs
  assert.equal(outputs.model_uri, 'models:/toy_model/1')
  assert.equal(outputs.model_version, 1)
  assert.equal((outputs.metrics as { world_size: number }).world_size, 2)

  const models = createModels({ db: engine.db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  const model = (await models.get('toy_model', 1))!
  assert.equal(model.stage, 'candidate')
  assert.equal(await sha256File(model.path), model.sha256)
  assert.deepEqual(model.features, ['a', 'b'])
  assert.deepEqual(model.lineage.dataset, { name: 'toy', version })
  assert.equal(model.lineage.run, runId)
  const resolved = await models.resolve('models:/toy_model/candidate')
  assert.equal(resolved.ok && resolved.path, model.path)
  const { audit } = await models.history('toy_model')
  assert.deepEqual(audit.map((a) => [a.version, a.fromStage, a.toStage, a.actor]), [[1, null, 'candidate', { run: runId, task: 'fit' }]])
})
