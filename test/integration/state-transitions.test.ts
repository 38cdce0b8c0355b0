/**
 * The store keeps to the transition tables of engine/state/states.ts: a change they do not list
 * matches no row (and is reported to the caller), a held claim whose task instance is not running
 * aborts the transaction, and mark success / failed re-opens what depended on the task.
 *
 * Only the scheduler loads the DAGs; it is stopped before each test moves its run by hand.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestEngine } from '../helpers/engine.ts'
import type { TestEngine } from '../helpers/engine.ts'
import { illegalHistory, waitForDags } from '../helpers/run-rows.ts'
import { claimAttempt, finishAttempt } from '../../engine/store/attempts.ts'
import { startQueuedRuns } from '../../engine/store/advance.ts'
import { cancelRun, markTask } from '../../engine/store/control.ts'
import { getDagVersion } from '../../engine/store/dags.ts'
import { readHistory } from '../../engine/store/history.ts'
import { TransitionRefused, transitionRuns, transitionTasks } from '../../engine/store/transitions.ts'

const CHAIN = `dag: chain
tasks:
  a: { operator: noop }
  b: { operator: noop, depends_on: [a] }
  c: { operator: noop, depends_on: [b] }
`

async function stoppedEngine(t: { after(fn: () => Promise<void>): void }, workers = 0): Promise<TestEngine> {
  const engine = await startTestEngine(t, { dags: { 'chain.yaml': CHAIN }, inProcessWorkers: workers })
  await waitForDags(engine.db, ['chain'])
  await engine.scheduler!.stop()
  return engine
}

async function runState(engine: TestEngine, runId: string): Promise<string> {
  return (await engine.db.query<{ state: string }>('SELECT state FROM cairn.run WHERE run_id = $1', [runId])).rows[0]!.state
}

test('the store refuses the state changes the transition tables do not list', async (t) => {
  const engine = await stoppedEngine(t)
  const runId = await engine.trigger('chain')
  const historyBefore = (await readHistory(engine.db, runId)).length

  // pending -> running skips queued: no row matches, nothing is written.
  assert.deepEqual(await transitionTasks(engine.db, { to: 'running', changes: [{ runId, taskId: 'a', reason: 'test' }] }), [])
  // A caller may narrow the table's from-states, never widen them.
  await assert.rejects(transitionTasks(engine.db, { to: 'running', from: ['pending'], changes: [{ runId, taskId: 'a', reason: 'test' }] }), TransitionRefused)
  // queued -> success skips running; a queued run cannot be queued again.
  assert.deepEqual(await transitionRuns(engine.db, { to: 'success', runIds: [runId], reason: 'test' }), [])
  assert.deepEqual(await transitionRuns(engine.db, { to: 'queued', byUser: true, runIds: [runId], reason: 'test' }), [])
  assert.equal(await runState(engine, runId), 'queued')
  assert.deepEqual(await engine.taskStates(runId), { a: 'pending', b: 'pending', c: 'pending' })
  assert.equal((await readHistory(engine.db, runId)).length, historyBefore)

  // A worker's late success does not overwrite a cancel.
  assert.deepEqual(await engine.db.tx((q) => startQueuedRuns(q, { boss: engine.boss, now: () => new Date() }, 'chain')), [runId])
  const claim = (await claimAttempt(engine.db, { runId, taskId: 'a', attempt: 1 }, 'test-worker', new Date()))!
  assert.ok(claim)
  await engine.db.tx((q) => cancelRun(q, runId, new Date(), 'alice'))
  const task = (await getDagVersion(engine.db, claim.versionId)).tasks.find((x) => x.id === 'a')!
  assert.equal(await engine.db.tx((q) => finishAttempt(q, claim.claimId, task, { kind: 'success', outputs: {} }, new Date())), undefined)
  assert.deepEqual(await transitionTasks(engine.db, { to: 'success', from: ['running'], changes: [{ runId, taskId: 'a', reason: 'late' }] }), [])
  assert.deepEqual(await engine.taskStates(runId), { a: 'cancelled', b: 'cancelled', c: 'cancelled' })

  // Out of a terminal state only a user's clear or mark goes.
  assert.deepEqual(await transitionTasks(engine.db, { to: 'pending', changes: [{ runId, taskId: 'b', reason: 'cleared' }] }), [])
  const cleared = await transitionTasks(engine.db, { to: 'pending', byUser: true, actor: 'alice', changes: [{ runId, taskId: 'b', reason: 'cleared' }] })
  assert.deepEqual(cleared.map((c) => [c.taskId, c.from]), [['b', 'cancelled']])

  const history = await readHistory(engine.db, runId)
  assert.deepEqual(
    history.filter((h) => h.actor === 'alice').map((h) => `${h.taskId ?? 'run'}:${h.from}>${h.to}`).sort(),
    ['a:running>cancelled', 'b:cancelled>pending', 'b:pending>cancelled', 'c:pending>cancelled', 'run:running>cancelled'],
  )
  assert.deepEqual(await illegalHistory(engine.db, runId), [])
})

test('an attempt whose claim is held but whose task instance is not running aborts the transaction', async (t) => {
  const engine = await stoppedEngine(t)
  const runId = await engine.trigger('chain')
  await engine.db.tx((q) => startQueuedRuns(q, { boss: engine.boss, now: () => new Date() }, 'chain'))
  const claim = (await claimAttempt(engine.db, { runId, taskId: 'a', attempt: 1 }, 'test-worker', new Date()))!
  // Something that bypasses the store moved the task instance on.
  await engine.db.query(`UPDATE cairn.task_instance SET state = 'skipped' WHERE run_id = $1 AND task_id = 'a'`, [runId])
  const task = (await getDagVersion(engine.db, claim.versionId)).tasks.find((x) => x.id === 'a')!
  await assert.rejects(engine.db.tx((q) => finishAttempt(q, claim.claimId, task, { kind: 'success', outputs: {} }, new Date())), TransitionRefused)
  const attempt = await engine.db.query<{ state: string }>('SELECT state FROM cairn.attempt WHERE claim_id = $1', [claim.claimId])
  assert.equal(attempt.rows[0]!.state, 'running', 'the attempt write was rolled back with the refused task change')
})

test('mark success of a failed task clears its downstream and the run settles again as success', async (t) => {
  const engine = await startTestEngine(t, {
    dags: {
      'marks.yaml': `dag: marks
tasks:
  flaky: { operator: shell, params: { command: ["false"] } }
  after: { operator: noop, depends_on: [flaky] }
  other: { operator: noop }
`,
    },
    inProcessWorkers: 1,
  })
  await waitForDags(engine.db, ['marks'])
  const runId = await engine.trigger('marks')
  assert.equal(await engine.waitForRun(runId), 'failed')
  assert.deepEqual(await engine.taskStates(runId), { after: 'upstream_failed', flaky: 'failed', other: 'success' })

  // Only finished task instances, and only to another state.
  const same = await engine.db.tx((q) => markTask(q, { runId, taskId: 'flaky', to: 'failed', actor: 'alice', now: new Date() }))
  assert.equal(same.ok, false)
  assert.equal(!same.ok && same.code, 'not_allowed')
  const missing = await engine.db.tx((q) => markTask(q, { runId, taskId: 'nope', to: 'success', actor: 'alice', now: new Date() }))
  assert.equal(!missing.ok && missing.code, 'not_found')

  const marked = await engine.db.tx((q) => markTask(q, { runId, taskId: 'flaky', to: 'success', actor: 'alice', now: new Date() }))
  assert.deepEqual(marked, { ok: true, previous: 'failed', cleared: ['after'], runState: 'queued' })
  assert.equal(await engine.waitForRun(runId), 'success')
  assert.deepEqual(await engine.taskStates(runId), { after: 'success', flaky: 'success', other: 'success' })

  // And back: marking it failed fails the run again (its downstream succeeded and stays so, as in Airflow).
  const failed = await engine.db.tx((q) => markTask(q, { runId, taskId: 'flaky', to: 'failed', actor: 'bob', now: new Date() }))
  assert.deepEqual(failed, { ok: true, previous: 'success', cleared: [], runState: 'queued' })
  assert.equal(await engine.waitForRun(runId), 'failed')

  const history = await readHistory(engine.db, runId)
  const byUsers = history.filter((h) => h.actor !== null).map((h) => `${h.actor} ${h.taskId ?? 'run'}:${h.from}>${h.to}`)
  assert.deepEqual(byUsers, [
    'alice flaky:failed>success',
    'alice after:upstream_failed>pending',
    'alice run:failed>queued',
    'bob flaky:success>failed',
    'bob run:success>queued',
  ])
  assert.deepEqual(await illegalHistory(engine.db, runId), [])
})
