/**
 * DAG versions carry the format of their stored spec, so runs queued before an upgrade of cairn
 * still run after it: a spec stored without a format (as cairn wrote them before formats existed)
 * is read in today's shape, and a run created from it runs to success. One written by a newer cairn
 * is refused with a message, not misread.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestEngine } from '../helpers/engine.ts'
import { waitForDags } from '../helpers/run-rows.ts'
import { createRun } from '../../engine/store/runs.ts'
import { getDagVersion } from '../../engine/store/dags.ts'
import { DAG_SPEC_FORMAT, readStoredSpec } from '../../engine/dag/spec-format.ts'
import type { DagSpec } from '../../engine/dag/dag-model.ts'

/** A two-task spec exactly as cairn stored it before specs had a format. */
const FORMAT_0_SPEC = {
  id: 'legacy',
  tags: [],
  timezone: 'UTC',
  catchup: 'latest',
  maxActiveRuns: 1,
  maxActiveTasks: 16,
  pausedOnLoad: false,
  params: { who: { type: 'string', default: 'old' } },
  tasks: [
    { id: 'first', operator: 'shell', dependsOn: [], triggerRule: 'all_success', retries: 0, retryDelayMs: 300000, retryBackoff: 'fixed', maxRetryDelayMs: 3600000, priority: 0, pool: 'default', env: { WHO: '{{ params.who }}' }, params: { script: 'printf \'{"who": "%s"}\' "$WHO" > "$CAIRN_OUTPUTS"' } },
    { id: 'second', operator: 'noop', dependsOn: ['first'], triggerRule: 'all_success', retries: 0, retryDelayMs: 300000, retryBackoff: 'fixed', maxRetryDelayMs: 3600000, priority: 0, pool: 'default', env: {}, params: {} },
  ],
}

test('a spec stored without a format is read in the current shape; a newer format is refused', () => {
  const read = readStoredSpec(FORMAT_0_SPEC)
  assert.ok(read.ok)
  assert.equal(read.upgradedFrom, 0)
  // The same spec; `queue`, added later with a default, reads as that default.
  assert.deepEqual(read.spec, { ...FORMAT_0_SPEC, tasks: FORMAT_0_SPEC.tasks.map((t) => ({ ...t, queue: 'default' })) })
  assert.equal('format' in read.spec, false)

  // Fields a format-0 row lacks get normalizeDag's defaults.
  const sparse = readStoredSpec({ id: 'sparse', tasks: [{ id: 'a' }] })
  assert.ok(sparse.ok)
  assert.equal(sparse.spec.maxActiveTasks, 16)
  assert.deepEqual(sparse.spec.tasks[0]!.dependsOn, [])
  assert.equal(sparse.spec.tasks[0]!.pool, 'default')

  const current = readStoredSpec({ ...FORMAT_0_SPEC, format: DAG_SPEC_FORMAT })
  assert.ok(current.ok)
  assert.equal(current.upgradedFrom, null)
  assert.deepEqual(current.spec.tasks.map((t) => t.queue), ['default', 'default'])
  const onQueue = readStoredSpec({ ...FORMAT_0_SPEC, format: DAG_SPEC_FORMAT, tasks: [{ ...FORMAT_0_SPEC.tasks[1]!, queue: 'team_a' }] })
  assert.ok(onQueue.ok)
  assert.equal(onQueue.spec.tasks[0]!.queue, 'team_a')

  const newer = readStoredSpec({ ...FORMAT_0_SPEC, format: DAG_SPEC_FORMAT + 1 })
  assert.equal(newer.ok, false)
  assert.match(!newer.ok ? newer.message : '', /newer cairn/)
  assert.equal(readStoredSpec({ ...FORMAT_0_SPEC, format: 'x' }).ok, false)
})

test('new versions are stored with the current format, and a run of a format-0 version runs to success', async (t) => {
  const engine = await startTestEngine(t, { dags: { 'legacy.yaml': 'dag: legacy\ntasks:\n  only: { operator: noop }\n' }, inProcessWorkers: 1 })
  await waitForDags(engine.db, ['legacy'])
  const stored = await engine.db.query<{ format: number | null }>(`SELECT (spec->>'format')::int AS format FROM cairn.dag_version WHERE dag_id = 'legacy'`)
  assert.deepEqual(stored.rows, [{ format: DAG_SPEC_FORMAT }])

  // The version an older cairn left behind, and a run queued on it before the upgrade.
  const { rows } = await engine.db.query<{ version_id: string }>(
    `INSERT INTO cairn.dag_version (dag_id, hash, spec, source) VALUES ('legacy', 'format-0', $1, '') RETURNING version_id`,
    [JSON.stringify(FORMAT_0_SPEC)],
  )
  const versionId = Number(rows[0]!.version_id)
  const spec = await getDagVersion(engine.db, versionId)
  const run = await engine.db.tx(async (q) => {
    const created = await createRun(q, { dag: spec as DagSpec, versionId, runType: 'manual', logicalDate: new Date(), dataIntervalStart: new Date(), dataIntervalEnd: new Date(), params: { who: 'old' }, ownsLogicalDate: false })
    await q.query(`SELECT pg_notify('cairn_wake', 'legacy')`)
    return created!
  })
  assert.equal(await engine.waitForRun(run.runId), 'success')
  assert.deepEqual(await engine.taskStates(run.runId), { first: 'success', second: 'success' })
  const outputs = await engine.db.query<{ outputs: unknown }>(`SELECT outputs FROM cairn.task_instance WHERE run_id = $1 AND task_id = 'first'`, [run.runId])
  assert.equal((outputs.rows[0]!.outputs as { who?: string }).who, 'old', 'the old spec\'s env template was rendered with the run\'s params')
})
