/**
 * `serve.rollout` through the engine (scheduler, queue, worker), with the servers' figures written by
 * the servers' own code (createServingStats, two "server processes") for traffic routed by the
 * registry's shares as they change. A server cairn.yaml does not declare is refused before anything
 * changes; a good version on a declared server goes 10 -> 50 -> 100 and becomes production;
 * a failing one is rolled back at its first step with production untouched and the task attempted
 * once; on_failure: hold keeps the split; another canary is refused; a rollout interrupted mid-way
 * is resumed at its recorded step; a re-run of a finished rollout changes nothing; a second task
 * is refused while another drives the rollout; a cancelled rollout takes the canary's traffic back.
 * (The same against the real model server under load: rollout-e2e.test.ts.)
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createModels } from '../../engine/models/registry.ts'
import { createRollouts } from '../../engine/models/rollouts.ts'
import { createServingStats } from '../../engine/serve/serving-stats.ts'
import type { Db } from '../../engine/store/db.ts'
import { startTestEngine } from '../helpers/engine.ts'
import { logLines, taskRows } from '../helpers/run-rows.ts'
import { cancelRun } from '../../engine/store/control.ts'
import { waitFor } from '../helpers/engine-extra.ts'

const until = <T>(what: string, check: () => Promise<T | undefined>, ms = 60_000) => waitFor(what, check, ms, 50)

const dag = (id: string, version: number, extra = '') => `dag: ${id}
tasks:
  rollout:
    operator: serve.rollout
    retries: 2
    params:
      model_name: churn
      version: ${version}
      steps: [10, 50, 100]
      step_duration: 1s
      analysis: { min_requests: 5, max_error_rate: 0.05, max_p99_latency_ms: 200 }
${extra}`

/**
 * Simulated model servers: every 10 ms each sends a request, routed by the canary's share as the
 * registry says now; versions in `failing` answer with an error.
 */
function startFleet(db: Db, failing: Set<number>): { stop(): Promise<void>; served: Map<number, number> } {
  const servers = ['server-a', 'server-b'].map((id) => createServingStats({ db, serverId: id, flushMs: 100 }))
  for (const s of servers) s.start()
  const served = new Map<number, number>()
  let routes: { version: number; stage: string; traffic_share: number }[] = []
  let stopped = false
  const refresh = async () => {
    while (!stopped) {
      routes = (await db.query<{ version: number; stage: string; traffic_share: number }>(`SELECT version, stage, traffic_share FROM cairn.model_version WHERE model = 'churn' AND stage IN ('production', 'canary')`)).rows
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  const refreshing = refresh()
  let n = 0
  const timer = setInterval(() => {
    const production = routes.find((r) => r.stage === 'production')
    const canary = routes.find((r) => r.stage === 'canary')
    for (const s of servers) {
      n++
      // A stable spread of 100 route keys: key < share * 100 goes to the canary.
      const version = canary && (n % 100) < canary.traffic_share * 100 ? canary.version : production?.version
      if (version === undefined) continue
      served.set(version, (served.get(version) ?? 0) + 1)
      s.record('churn', version, 1 + (n % 5), failing.has(version))
    }
  }, 10)
  return {
    served,
    async stop() {
      stopped = true
      clearInterval(timer)
      await refreshing
      for (const s of servers) await s.stop()
    },
  }
}

test('serve.rollout through the engine: promote, roll back, hold, refuse, resume, re-run', { timeout: 300_000 }, async (t) => {
  const engine = await startTestEngine(t, {
    dags: {
      'good.yaml': dag('good', 2, '      server: edge\n'),
      'unknown_server.yaml': dag('unknown_server', 2, '      server: eu\n'),
      'bad.yaml': dag('bad', 3),
      'held.yaml': dag('held', 4, '      on_failure: hold\n      server: default\n'),
      'blocked.yaml': dag('blocked', 5),
      'resumed.yaml': dag('resumed', 5),
      'cancelled.yaml': dag('cancelled', 3).replace('step_duration: 1s', 'step_duration: 10m'),
      'second.yaml': dag('second', 3).replace('step_duration: 1s', 'step_duration: 10m'),
      'patient.yaml': dag('patient', 3).replace('steps: [10, 50, 100]', 'steps: [100]').replace('step_duration: 1s', 'step_duration: 500ms').replace('min_requests: 5', 'min_requests: 300'),
    },
    inProcessWorkers: 1,
    config: { model_servers: { edge: { host: '127.0.0.1', port: 8502 } } },
  })
  const { db } = engine
  const models = createModels({ db, dir: engine.data.dir, producer: { kind: 'actor', actor: 'test' } })
  for (const n of [1, 2, 3, 4, 5]) {
    writeFileSync(join(engine.dir, `m${n}.onnx`), `model ${n}`)
    await models.register({ name: 'churn', file: join(engine.dir, `m${n}.onnx`) })
  }
  await models.stage('churn', 1, 'production', { user: 'test' })
  const failing = new Set([3, 4])
  const fleet = startFleet(db, failing)
  let fleetStopped = false
  // Hooks run last registered first, so this one runs before the database is dropped.
  t.after(() => (fleetStopped ? undefined : fleet.stop()))
  const stages = async () => Object.fromEntries((await models.versions('churn')).map((v) => [v.version, `${v.stage}:${v.trafficShare}`]))

  // A server cairn.yaml does not declare: refused at once, not retried, nothing recorded or changed.
  const unknown = await engine.trigger('unknown_server')
  assert.equal(await engine.waitForRun(unknown, 60_000), 'failed')
  const unknownTask = (await taskRows(db, unknown)).get('rollout')!
  assert.deepEqual([unknownTask.attempt, unknownTask.failure_kind], [1, 'invalid_params'])
  assert.equal(unknownTask.message, 'server "eu" is not a model server of cairn.yaml (declared: default, edge; default is the one `cairn up` runs); add it under model_servers or name one of these')
  assert.deepEqual(await stages(), { 1: 'production:1', 2: 'candidate:0', 3: 'candidate:0', 4: 'candidate:0', 5: 'candidate:0' })
  assert.deepEqual(await models.rollouts('churn'), [])

  // A good version on a declared server: three steps, then production; the old production archived.
  const good = await engine.trigger('good')
  assert.equal(await engine.waitForRun(good, 120_000), 'success')
  const goodTask = (await taskRows(db, good)).get('rollout')!
  assert.deepEqual(goodTask.outputs, { version: 2, stage: 'production', rolled_back: false })
  assert.deepEqual(await stages(), { 1: 'archived:0', 2: 'production:1', 3: 'candidate:0', 4: 'candidate:0', 5: 'candidate:0' })
  assert.match((await logLines(db, good, 'rollout')).map((l) => l.line).join('\n'), /server edge: the rollout moves the split every model server on this database follows/)
  const [promoted] = await models.rollouts('churn')
  assert.equal(promoted!.status, 'promoted')
  assert.deepEqual(promoted!.steps.map((s) => [s.percent, s.passed]), [[10, true], [50, true], [100, true]])
  for (const s of promoted!.steps) {
    assert.ok(s.requests >= 5 && s.errors === 0 && s.p99_ms !== null, JSON.stringify(s))
    // Decided after the step's window, not before.
    assert.ok(new Date(s.ended_at!).getTime() - new Date(s.started_at).getTime() >= 1000, JSON.stringify(s))
  }

  // A failing version: rolled back at its first step, production untouched, one attempt despite retries.
  const bad = await engine.trigger('bad')
  assert.equal(await engine.waitForRun(bad, 120_000), 'failed')
  const badTask = (await taskRows(db, bad)).get('rollout')!
  assert.deepEqual([badTask.attempt, badTask.failure_kind], [1, 'gate_not_met'])
  assert.match(badTask.message!, /rollout of churn version 3 failed at step 1 \(10 %\): error rate 1 over the limit 0.05/)
  const out = badTask.outputs as Record<string, unknown>
  assert.deepEqual([out.version, out.stage, out.rolled_back, out.failed_step, out.percent, out.error_rate], [3, 'candidate', true, 1, 10, 1])
  assert.ok((out.requests as number) >= 5 && out.errors === out.requests)
  assert.deepEqual(await stages(), { 1: 'archived:0', 2: 'production:1', 3: 'candidate:0', 4: 'candidate:0', 5: 'candidate:0' })
  assert.equal((await models.rollouts('churn'))[0]!.status, 'rolled_back')

  // hold: the split stays for a person to decide.
  const held = await engine.trigger('held')
  assert.equal(await engine.waitForRun(held, 120_000), 'failed')
  assert.deepEqual(((await taskRows(db, held)).get('rollout')!.outputs as Record<string, unknown>).stage, 'canary')
  assert.deepEqual(await stages(), { 1: 'archived:0', 2: 'production:0.9', 3: 'candidate:0', 4: 'canary:0.1', 5: 'candidate:0' })
  assert.equal((await models.rollouts('churn'))[0]!.status, 'held')

  // Another canary (the held one): refused, nothing changed.
  const blocked = await engine.trigger('blocked')
  assert.equal(await engine.waitForRun(blocked, 120_000), 'failed')
  assert.match((await taskRows(db, blocked)).get('rollout')!.message!, /cannot roll out churn version 5: version 4 of the model is being rolled out \(held\); a model has one canary at a time/)
  assert.deepEqual(await stages(), { 1: 'archived:0', 2: 'production:0.9', 3: 'candidate:0', 4: 'canary:0.1', 5: 'candidate:0' })

  // A person ends the held rollout; a rollout of 5 interrupted at its second step is resumed there.
  await models.stage('churn', 4, 'candidate', { user: 'test' })
  const before = createRollouts({ db, producer: { kind: 'actor', actor: 'earlier attempt' } })
  const plan = { steps: [10, 50, 100], stepDurationMs: 1000, analysis: { minRequests: 5, maxErrorRate: 0.05, maxP99LatencyMs: 200 }, onFailure: 'rollback' as const }
  const interrupted = await before.begin('churn', 5, plan, new Date())
  await before.startStep(interrupted, 0, 10, new Date())
  await before.passStep(interrupted, 0, { requests: 7, errors: 0, errorRate: 0, p99Ms: 2 }, new Date())
  await before.startStep(interrupted, 1, 50, new Date())
  const firstStep = (await before.read('churn', 5)).rollout!.steps[0]!
  const resumed = await engine.trigger('resumed')
  assert.equal(await engine.waitForRun(resumed, 120_000), 'success')
  const [done] = await models.rollouts('churn')
  assert.deepEqual([done!.id, done!.status, done!.steps.length, done!.runId], [interrupted.id, 'promoted', 3, resumed])
  assert.deepEqual(done!.steps[0], firstStep)
  assert.deepEqual(await stages(), { 1: 'archived:0', 2: 'archived:0', 3: 'candidate:0', 4: 'candidate:0', 5: 'production:1' })

  // Re-running a finished rollout: the version is production already; nothing changes.
  const count = (await models.rollouts('churn')).length
  const again = await engine.trigger('resumed')
  assert.equal(await engine.waitForRun(again, 120_000), 'success')
  assert.deepEqual((await taskRows(db, again)).get('rollout')!.outputs, { version: 5, stage: 'production', rolled_back: false })
  assert.equal((await models.rollouts('churn')).length, count)
  assert.ok((fleet.served.get(3) ?? 0) > 0, 'the failing version got traffic before its rollback')

  // Cancelled mid-step: nobody watches the canary any more, so its traffic goes back to production.
  failing.delete(3)
  const cancelled = await engine.trigger('cancelled')
  await until('the canary at its first step', async () => (await stages())[3] === 'canary:0.1' || undefined)
  // Two tasks never drive one rollout: a second run of the same rollout is refused while the first runs.
  const second = await engine.trigger('second')
  assert.equal(await engine.waitForRun(second, 60_000), 'failed')
  assert.match((await taskRows(db, second)).get('rollout')!.message!, new RegExp(`cannot roll out churn version 3: it is being rolled out by run ${cancelled} task rollout \\(attempt 1\\), which is still running`))
  assert.equal((await taskRows(db, second)).get('rollout')!.attempt, 1)
  await db.tx((q) => cancelRun(q, cancelled, new Date(), 'test'))
  assert.equal(await engine.waitForRun(cancelled, 60_000), 'cancelled')
  const [stopped] = await until('the cancelled rollout ended', async () => {
    const all = await models.rollouts('churn')
    return all[0]!.status === 'rolled_back' ? all : undefined
  })
  assert.deepEqual([stopped!.version, stopped!.reason, stopped!.steps.map((s) => [s.percent, s.passed])], [3, 'the task was cancelled', [[10, false]]])
  assert.deepEqual(await stages(), { 1: 'archived:0', 2: 'archived:0', 3: 'candidate:0', 4: 'candidate:0', 5: 'production:1' })

  // A step whose window ends before min_requests came waits for them, and says so.
  const patient = await engine.trigger('patient')
  assert.equal(await engine.waitForRun(patient, 120_000), 'success')
  const [waited] = await models.rollouts('churn')
  assert.deepEqual([waited!.version, waited!.status, waited!.steps.length, waited!.steps[0]!.waited_for_requests], [3, 'promoted', 1, true])
  assert.ok(waited!.steps[0]!.requests >= 300, JSON.stringify(waited!.steps[0]))
  assert.ok(new Date(waited!.steps[0]!.ended_at!).getTime() - new Date(waited!.steps[0]!.started_at).getTime() > 500)
  assert.equal(promoted!.steps.filter((s) => s.waited_for_requests === undefined).length, 0)
  fleetStopped = true
  await fleet.stop()
})
