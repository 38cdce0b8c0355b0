import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decideRun } from '../../engine/state/decide-run.ts'
import { dependencyOrder, downstreamOf } from '../../engine/graph/task-graph.ts'
import type { TaskInstanceSnapshot } from '../../engine/state/decide-run.ts'
import type { DagSpec, TaskSpec } from '../../engine/dag/dag-model.ts'
import type { TaskState } from '../../engine/state/states.ts'
import type { TriggerRule } from '../../engine/state/trigger-rules.ts'

const NOW = new Date('2026-06-01T12:00:00Z')

function task(id: string, dependsOn: string[] = [], extra: Partial<TaskSpec> = {}): TaskSpec {
  return { id, operator: 'noop', dependsOn, triggerRule: 'all_success' as TriggerRule, retries: 0, retryDelayMs: 1000, retryBackoff: 'fixed', maxRetryDelayMs: 60_000, priority: 0, pool: 'default', queue: 'default', env: {}, params: {}, ...extra }
}

function dag(tasks: TaskSpec[], extra: Partial<DagSpec> = {}): DagSpec {
  return { id: 'd', tags: [], timezone: 'UTC', catchup: 'latest', maxActiveRuns: 1, maxActiveTasks: 16, pausedOnLoad: false, params: {}, tasks, ...extra }
}

function snapshot(states: Record<string, TaskState>, retryAt: Record<string, Date> = {}): { runId: string; tasks: Map<string, TaskInstanceSnapshot> } {
  return { runId: 'r', tasks: new Map(Object.entries(states).map(([id, state]) => [id, { state, attempt: 0, nextRetryAt: retryAt[id] ?? null }])) }
}

const kinds = (d: ReturnType<typeof decideRun>) => d.decisions.map((x) => (x.kind === 'queue_task' ? `queue ${x.taskId}` : x.kind === 'settle_task' ? `${x.to} ${x.taskId}` : `run ${x.to}`))

test('a fresh run queues the tasks without upstream only', () => {
  const d = dag([task('a'), task('b', ['a']), task('c')])
  assert.deepEqual(kinds(decideRun(d, snapshot({ a: 'pending', b: 'pending', c: 'pending' }), NOW, new Map())), ['queue a', 'queue c'])
})

test('a skip cascades through all_success downstream in one pass, and the run finishes', () => {
  const d = dag([task('a'), task('b', ['a']), task('c', ['b']), task('d', ['c'], { triggerRule: 'all_done' })])
  const result = decideRun(d, snapshot({ a: 'skipped', b: 'pending', c: 'pending', d: 'pending' }), NOW, new Map())
  assert.deepEqual(kinds(result), ['skipped b', 'skipped c', 'queue d'])
})

test('a failure makes all_success downstream upstream_failed, and the run fails once everything is done', () => {
  const d = dag([task('a'), task('b', ['a']), task('c', ['b'])])
  assert.deepEqual(kinds(decideRun(d, snapshot({ a: 'failed', b: 'pending', c: 'pending' }), NOW, new Map())), ['upstream_failed b', 'upstream_failed c', 'run failed'])
})

test('a run whose tasks all succeeded or were skipped succeeds', () => {
  const d = dag([task('a'), task('b')])
  assert.deepEqual(kinds(decideRun(d, snapshot({ a: 'success', b: 'skipped' }), NOW, new Map())), ['run success'])
})

test('nothing is decided while tasks run', () => {
  const d = dag([task('a'), task('b', ['a'])])
  assert.deepEqual(kinds(decideRun(d, snapshot({ a: 'running', b: 'pending' }), NOW, new Map())), [])
})

test('max_active_tasks limits queueing, counts running tasks, and reports held-back work', () => {
  const d = dag([task('a'), task('b'), task('c'), task('d')], { maxActiveTasks: 3 })
  const result = decideRun(d, snapshot({ a: 'running', b: 'pending', c: 'pending', d: 'pending' }), NOW, new Map())
  assert.deepEqual(kinds(result), ['queue b', 'queue c'])
  assert.equal(result.heldBack, true)
})

test('higher priority starts first when slots are scarce; ties keep DAG order', () => {
  const d = dag([task('low'), task('high', [], { priority: 10 }), task('mid', [], { priority: 5 }), task('mid2', [], { priority: 5 })], { maxActiveTasks: 3 })
  assert.deepEqual(kinds(decideRun(d, snapshot({ low: 'pending', high: 'pending', mid: 'pending', mid2: 'pending' }), NOW, new Map())), ['queue high', 'queue mid', 'queue mid2'])
})

test('a pool with free slots admits that many, other pools are not affected', () => {
  const d = dag([task('a', [], { pool: 'gpu' }), task('b', [], { pool: 'gpu' }), task('c', [], { pool: 'gpu' }), task('d')])
  const result = decideRun(d, snapshot({ a: 'pending', b: 'pending', c: 'pending', d: 'pending' }), NOW, new Map([['gpu', 2]]))
  assert.deepEqual(kinds(result), ['queue a', 'queue b', 'queue d'])
  assert.equal(result.heldBack, true)
})

test('a retry is queued only once its time has come', () => {
  const d = dag([task('a')])
  const later = new Date(NOW.getTime() + 1000)
  assert.deepEqual(kinds(decideRun(d, snapshot({ a: 'up_for_retry' }, { a: later }), NOW, new Map())), [])
  const due = decideRun(d, snapshot({ a: 'up_for_retry' }, { a: NOW }), NOW, new Map())
  assert.deepEqual(kinds(due), ['queue a'])
  assert.equal(due.decisions[0]!.kind === 'queue_task' && due.decisions[0]!.retry, true)
})

test('with `only`, just those tasks are decided and the run is never finished', () => {
  const d = dag([task('a'), task('b', ['a']), task('c', ['a']), task('x')])
  const run = { runId: 'r', tasks: new Map([['a', { state: 'success' as TaskState, attempt: 1, nextRetryAt: null }], ['b', { state: 'pending' as TaskState, attempt: 0, nextRetryAt: null }]]) }
  const result = decideRun(d, run, NOW, new Map(), { only: new Set(['b']), active: 0 })
  assert.deepEqual(kinds(result), ['queue b'])
})

test('dependency order puts upstreams first and keeps file order for ties; downstream lookups', () => {
  const tasks = [task('c', ['b']), task('a'), task('b', ['a']), task('d')]
  assert.deepEqual(dependencyOrder(tasks).map((t) => t.id), ['a', 'd', 'b', 'c'])
  const d = dag(tasks)
  assert.deepEqual(downstreamOf(d.tasks, 'a'), ['b'])
  assert.deepEqual(downstreamOf(d.tasks, 'c'), [])
})
