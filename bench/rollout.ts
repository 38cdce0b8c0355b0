/**
 * Canary rollout decision time (issue 12, acceptance 5): how long after a step's window ends
 * (step start + step_duration) `serve.rollout` has recorded its decision, and how long after a
 * rollback decision the clients stop getting answers from the canary. The whole engine (scheduler,
 * queue, worker running the operator) with a real model server in this process under a bounded load
 * (8 clients, each waiting for its answer). Each round rolls out a good version (10 -> 50 -> 100,
 * promoted) and a broken one (wrong input shape, rolled back at its first step). Steps that had to
 * wait past their window for min_requests (the operator records it) are shown apart: they wait by
 * design. Goal: decision < 1 s after the window. Prints figures; never pass/fail.
 * Usage: node bench/rollout.ts [--rounds N] [--step-ms MS]
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { silentLogger } from '../engine/log.ts'
import { startEmbeddedPostgres } from '../engine/store/embedded.ts'
import { createDb } from '../engine/store/db.ts'
import { migrate } from '../engine/store/migrate.ts'
import { startBoss } from '../engine/queue/task-queue.ts'
import { startScheduler } from '../engine/scheduler/scheduler.ts'
import { startWorker } from '../engine/worker/worker.ts'
import { triggerRun } from '../engine/store/control.ts'
import { createSecretStore } from '../engine/secrets/secrets.ts'
import { dataSettings } from '../engine/config/data-settings.ts'
import { createModels } from '../engine/models/registry.ts'
import { createServeServer } from '../engine/serve/serve-server.ts'
import { createToken } from '../engine/web/auth/tokens.ts'
import { sigmoidModel } from '../test/helpers/rollout-models.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, 'step-ms': { type: 'string', default: '1000' } } })
const ROUNDS = Number(values.rounds)
const STEP_MS = Number(values['step-ms'])
const MIN_REQUESTS = 10
const log = silentLogger()
const pct = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!

const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-rollout-'))
const dags = join(dir, 'dags')
mkdirSync(dags)
const dag = (id: string) => `dag: ${id}
params:
  version: { type: integer }
tasks:
  rollout:
    operator: serve.rollout
    params:
      model_name: churn
      version: "{{ params.version }}"
      steps: [10, 50, 100]
      step_duration: ${STEP_MS}ms
      analysis: { min_requests: ${MIN_REQUESTS}, max_error_rate: 0.05, max_p99_latency_ms: 1000 }
`
writeFileSync(join(dags, 'rollout.yaml'), dag('rollout'))

const pg = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), log, ephemeral: true })
const db = createDb(pg.url, { log, max: 10 })
try {
  await migrate(db, log)
  const data = dataSettings({}, { cwd: dir, home: join(dir, 'home'), dagsFolder: dags })
  const boss = await startBoss({ url: pg.url, log, max: 6 })
  const scheduler = await startScheduler({ db, boss, log, dagsFolder: dags, cwd: dir, names: undefined, loopMs: 200, syncEveryMs: 200 })
  const worker = await startWorker({ db, boss, log, slots: 4, workRoot: join(dir, 'work'), secrets: createSecretStore({ env: {} }), workerEnv: process.env, data })
  const server = await createServeServer({ db, log, dataDir: data.dir })
  await server.app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(server.app.server.address() as { port: number }).port}`
  const models = createModels({ db, dir: data.dir, producer: { kind: 'actor', actor: 'bench' } })
  const register = async (bytes: Uint8Array) => {
    const file = join(dir, `m${Math.random()}.onnx`)
    writeFileSync(file, bytes)
    return (await models.register({ name: 'churn', file })).version.version
  }
  await models.stage('churn', await register(sigmoidModel([0.5, -1, 2], 0.1)), 'production', { user: 'bench' })
  const token = (await createToken(db, { name: 'bench', role: 'viewer' }))!.token
  console.log(`rollout decision time: engine + model server in one process on embedded PostgreSQL, steps 10 -> 50 -> 100 of ${STEP_MS} ms, min_requests ${MIN_REQUESTS}, ${ROUNDS} round(s)`)

  // Bounded load: 8 clients, each sends its next request when the last one is answered.
  const answers: { at: number; version: number }[] = []
  let loading = true
  const body = JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [0.1, 0.2, 0.3] }] })
  const clients = Array.from({ length: 8 }, async () => {
    while (loading) {
      const res = await fetch(`${url}/v2/models/churn/infer`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body })
      const answer = (await res.json()) as { model_version?: string }
      answers.push({ at: Date.now(), version: Number(answer.model_version) })
    }
  })

  const decisions: number[] = []
  const waited: number[] = []
  const rollbackPropagation: number[] = []
  const runOne = async (version: number): Promise<void> => {
    const result = await db.tx((q) => triggerRun(q, { now: () => new Date() }, { dagId: 'rollout', params: { version } }))
    if (!result.ok) throw new Error(result.message)
    for (;;) {
      const { rows } = await db.query<{ state: string }>('SELECT state FROM cairn.run WHERE run_id = $1', [result.run.runId])
      if (['success', 'failed', 'cancelled'].includes(rows[0]!.state)) break
      await new Promise((r) => setTimeout(r, 50))
    }
    const [rollout] = await models.rollouts('churn')
    for (const step of rollout!.steps) {
      const windowEnd = new Date(new Date(step.started_at).getTime() + STEP_MS)
      const lag = new Date(step.ended_at!).getTime() - windowEnd.getTime()
      if (step.waited_for_requests) waited.push(lag)
      else decisions.push(lag)
    }
    if (rollout!.status === 'rolled_back') {
      const decidedAt = rollout!.endedAt!.getTime()
      await new Promise((r) => setTimeout(r, 1500))
      const lastCanary = answers.filter((a) => a.version === version).map((a) => a.at).reduce((a, b) => Math.max(a, b), decidedAt)
      rollbackPropagation.push(lastCanary - decidedAt)
    }
    console.log(`  version ${version}: ${rollout!.status}; steps ${rollout!.steps.map((s) => `${s.percent}% ${s.passed ? 'pass' : 'fail'} (${s.requests} req, decided ${new Date(s.ended_at!).getTime() - new Date(s.started_at).getTime() - STEP_MS} ms after the window)`).join(', ')}`)
  }
  for (let round = 0; round < ROUNDS; round++) {
    await runOne(await register(sigmoidModel([Math.random(), -1, 2], 0.1)))
    await runOne(await register(sigmoidModel([1, 1, 1, 1], 0)))
  }
  loading = false
  await Promise.all(clients)
  console.log(`decision after the step window ended (${decisions.length} steps with min_requests in time): p50 ${pct(decisions, 0.5)} ms, p90 ${pct(decisions, 0.9)} ms, max ${Math.max(...decisions)} ms (goal < 1000 ms)`)
  if (waited.length > 0) console.log(`  steps that waited for min_requests past their window: ${waited.length} (decided ${waited.join(', ')} ms after it)`)
  console.log(`rollback: last answer of the canary after the decision: ${rollbackPropagation.map((x) => `${x} ms`).join(', ')} (requests already inside the canary finish there)`)
  console.log(`load: ${answers.length} answers`)
  await server.close()
  await worker.drain(2000)
  await scheduler.stop()
  await boss.stop({ graceful: false, close: true })
} finally {
  await db.close()
  await pg.stop()
  rmSync(dir, { recursive: true, force: true })
}
