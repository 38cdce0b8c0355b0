/**
 * Issue 12, acceptance 1: canary rollouts end to end under load. The engine (scheduler, queue, an
 * in-process worker) runs `serve.rollout` tasks while two real `cairn serve` processes on the same
 * Postgres take a bounded load from concurrent clients (plain fetch loops, each waiting for its
 * answer). ONNX models are built here with onnx-proto:
 *   v1  production: sigmoid over 3 features
 *   v2  a good candidate: same inputs, other weights    -> 10 -> 50 -> 100 %, becomes production
 *   v3  a broken one: expects 4 features (wrong input shape), so every request routed to it fails
 *       -> rolled back automatically at its first step, production (v2) untouched
 * Every answer is recorded with the version that gave it. Zero requests fail because of a swap or a
 * rollback: during the good rollout and its promotion nothing fails at all; during the broken one
 * the only failures are answers of v3 itself (its own errors, what the analysis sees), none after
 * the servers followed the rollback, and no request is ever refused by the connection.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createModels } from '../../engine/models/registry.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'
import { startTestEngine } from '../helpers/engine.ts'
import { taskRows } from '../helpers/run-rows.ts'
import { sigmoidModel } from '../helpers/rollout-models.ts'

const MAIN = new URL('../../engine/cli/main.ts', import.meta.url).pathname
const STEP_MS = 2000

const dag = (id: string, version: number) => `dag: ${id}
tasks:
  rollout:
    operator: serve.rollout
    retries: 2
    params:
      model_name: churn
      version: ${version}
      steps: [10, 50, 100]
      step_duration: ${STEP_MS}ms
      analysis: { min_requests: 20, max_error_rate: 0.05, max_p99_latency_ms: 2000 }
`

interface Answer {
  at: number
  status: number
  /** The version that answered (from the body; also on errors), or undefined when the request itself failed. */
  version: number | undefined
  error?: string
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await fn().catch(() => undefined)
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

test('rollout end to end under load: a good version promoted, a broken one rolled back, no request failed by a swap', { timeout: 300_000 }, async (t) => {
  const engine = await startTestEngine(t, { dags: { 'good.yaml': dag('good', 2), 'broken.yaml': dag('broken', 3) }, inProcessWorkers: 1 })
  const { db } = engine
  const models = createModels({ db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  const files: [string, Uint8Array][] = [
    ['v1.onnx', sigmoidModel([0.5, -1, 2], 0.1)],
    ['v2.onnx', sigmoidModel([-0.25, 0.75, 0.5], -0.2)],
    ['v3.onnx', sigmoidModel([1, 1, 1, 1], 0)],
  ]
  for (const [name, bytes] of files) {
    writeFileSync(join(engine.dir, name), bytes)
    await models.register({ name: 'churn', file: join(engine.dir, name) })
  }
  await models.stage('churn', 1, 'production', { user: 'test' })
  const token = (await createToken(db, { name: 'load', role: 'viewer' }))!.token

  // Two model server processes on the engine's database and data directory.
  const servers: { child: ChildProcess; url: string }[] = []
  for (let i = 0; i < 2; i++) {
    const port = await freePort()
    const child = spawn(process.execPath, [MAIN, 'serve', '--port', String(port)], {
      cwd: engine.dir,
      env: { ...process.env, DATABASE_URL: engine.url, CAIRN_HOME: join(engine.dir, 'home'), CAIRN_CONFIG: join(engine.dir, 'cairn.yaml'), CAIRN_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
    const exited = new Promise<void>((r) => child.once('exit', () => r()))
    t.after(async () => {
      if (child.exitCode === null) child.kill('SIGTERM')
      await exited
    })
    const url = `http://127.0.0.1:${port}`
    await until(`model server ${i} ready (${stderr})`, async () => (await fetch(`${url}/v2/health/ready`)).ok)
    servers.push({ child, url })
  }

  // Bounded load: 6 clients, each sends its next request when the last one is answered.
  const answers: Answer[] = []
  let loading = true
  const body = JSON.stringify({ inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [0.1, 0.2, 0.3, 1, 2, 3] }] })
  const client = async (n: number) => {
    for (let i = 0; loading; i++) {
      const server = servers[(n + i) % servers.length]!
      try {
        const res = await fetch(`${server.url}/v2/models/churn/infer`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body })
        const answer = (await res.json()) as { model_version?: string; error?: string }
        answers.push({ at: Date.now(), status: res.status, version: answer.model_version === undefined ? undefined : Number(answer.model_version), ...(answer.error ? { error: answer.error } : {}) })
      } catch (error) {
        answers.push({ at: Date.now(), status: 0, version: undefined, error: String(error) })
      }
    }
  }
  const clients = Array.from({ length: 6 }, (_, n) => client(n))
  t.after(async () => {
    loading = false
    await Promise.all(clients)
  })
  await until('traffic on production', async () => answers.filter((a) => a.status === 200).length > 50)

  // The good candidate: 10 -> 50 -> 100, then production.
  const goodStart = Date.now()
  const good = await engine.trigger('good')
  assert.equal(await engine.waitForRun(good, 120_000), 'success', JSON.stringify(await taskRows(db, good)))
  assert.deepEqual((await taskRows(db, good)).get('rollout')!.outputs, { version: 2, stage: 'production', rolled_back: false })
  const [promoted] = await models.rollouts('churn')
  assert.deepEqual(promoted!.steps.map((s) => [s.percent, s.passed]), [[10, true], [50, true], [100, true]])
  // Let the servers follow the promotion, then look at everything answered since the rollout began.
  const promotedAt = promoted!.endedAt!.getTime()
  await until('answers after the promotion', async () => answers.some((a) => a.at > promotedAt + 1500))
  const duringGood = answers.filter((a) => a.at >= goodStart)
  const goodFailures = duringGood.filter((a) => a.status !== 200)
  assert.deepEqual(goodFailures.slice(0, 5), [], `${goodFailures.length} requests failed during the good rollout`)
  assert.ok(duringGood.some((a) => a.version === 2) && duringGood.some((a) => a.version === 1), 'both versions answered during the rollout')
  assert.deepEqual([...new Set(answers.filter((a) => a.at > promotedAt + 1000).map((a) => a.version))], [2], 'only the new production answers after the promotion')
  assert.deepEqual((await models.versions('churn')).map((v) => [v.version, v.stage, v.trafficShare]), [[1, 'archived', 0], [2, 'production', 1], [3, 'candidate', 0]])

  // The broken version: rolled back at once, production untouched.
  const brokenStart = Date.now()
  const broken = await engine.trigger('broken')
  assert.equal(await engine.waitForRun(broken, 120_000), 'failed')
  const task = (await taskRows(db, broken)).get('rollout')!
  assert.deepEqual([task.attempt, task.failure_kind], [1, 'gate_not_met'])
  const out = task.outputs as Record<string, unknown>
  assert.deepEqual([out.version, out.stage, out.rolled_back, out.failed_step, out.percent], [3, 'candidate', true, 1, 10])
  assert.ok((out.error_rate as number) > 0.9, JSON.stringify(out))
  const [rolledBack] = await models.rollouts('churn')
  assert.equal(rolledBack!.status, 'rolled_back')
  const rollbackAt = rolledBack!.endedAt!.getTime()
  await until('answers after the rollback', async () => answers.some((a) => a.at > rollbackAt + 1500))
  loading = false
  await Promise.all(clients)
  assert.deepEqual((await models.versions('churn')).map((v) => [v.version, v.stage, v.trafficShare]), [[1, 'archived', 0], [2, 'production', 1], [3, 'candidate', 0]])

  const duringBroken = answers.filter((a) => a.at >= brokenStart)
  const failures = duringBroken.filter((a) => a.status !== 200)
  const notTheCanary = failures.filter((a) => a.version !== 3)
  assert.deepEqual(notTheCanary.slice(0, 5), [], `${notTheCanary.length} failed requests were not answers of the broken version`)
  assert.ok(failures.length > 0, 'the broken version got traffic before its rollback')
  for (const f of failures.slice(0, 3)) assert.match(f.error ?? '', /version 3 of model churn cannot take this request/)
  const late = answers.filter((a) => a.at > rollbackAt + 1000)
  assert.deepEqual([...new Set(late.map((a) => [a.status, a.version].join(' ')))], ['200 2'], 'after the rollback only production answers, and it answers every request')
  assert.equal(answers.filter((a) => a.status === 0).length, 0, 'no request failed on the connection')

  // Decision time after each step's window ended, for the steps that did not have to wait past their
  // window for min_requests (the operator records which did).
  const decisions = [...promoted!.steps, ...rolledBack!.steps].filter((s) => !s.waited_for_requests).map((s) => new Date(s.ended_at!).getTime() - new Date(s.started_at).getTime() - STEP_MS)
  t.diagnostic(`answers: ${answers.length} (${failures.length} failed, all from the broken canary); decision after the window, ms: ${decisions.join(', ')}`)
  // The goal (< 1 s) is measured by bench/rollout.ts; here, on a shared machine, the median must meet it
  // and no step may be decided before its window ended.
  assert.ok(decisions.length >= 2, `only ${decisions.length} steps had their requests in time`)
  for (const d of decisions) assert.ok(d >= 0 && d < 5000, `decision ${d} ms after the window ended`)
  assert.ok([...decisions].sort((a, b) => a - b)[Math.floor(decisions.length / 2)]! < 1000, `median decision time ${decisions.join(', ')} ms`)
})
