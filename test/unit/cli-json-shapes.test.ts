import { test } from 'node:test'
import assert from 'node:assert/strict'
import { dagJson, datasetJson, datasetVersionJson, isoOrNull, logLineJson, runJson, taskJson, triggerJson } from '../../engine/json-shapes.ts'

const at = (iso: string): Date => new Date(iso)

test('runJson has exactly the SPEC keys, ISO-8601 UTC with milliseconds, null until known', () => {
  const run = {
    runId: 'd__manual__20260101T0000Z_abc123',
    dagId: 'd',
    state: 'running' as const,
    logicalDate: at('2026-01-01T00:00:00Z'),
    queuedAt: at('2026-01-01T00:00:01.5Z'),
    startedAt: at('2026-01-01T00:00:02.25Z'),
    endedAt: null,
    params: { ignored: true },
  }
  assert.deepEqual(runJson(run), {
    run_id: 'd__manual__20260101T0000Z_abc123',
    dag_id: 'd',
    state: 'running',
    logical_date: '2026-01-01T00:00:00.000Z',
    queued_at: '2026-01-01T00:00:01.500Z',
    started_at: '2026-01-01T00:00:02.250Z',
    ended_at: null,
  })
  assert.deepEqual(Object.keys(runJson(run)), ['run_id', 'dag_id', 'state', 'logical_date', 'queued_at', 'started_at', 'ended_at'])
})

test('taskJson reports the latest attempt number as attempts, and its outputs ({} when none)', () => {
  const done = taskJson({ taskId: 't', state: 'up_for_retry', attempt: 2, startedAt: at('2026-03-29T01:30:00+01:00'), endedAt: at('2026-03-29T00:31:00Z'), outputs: { exit_code: 3, path: '/data/x.csv' } })
  assert.deepEqual(done, {
    task_id: 't',
    state: 'up_for_retry',
    attempts: 2,
    started_at: '2026-03-29T00:30:00.000Z',
    ended_at: '2026-03-29T00:31:00.000Z',
    outputs: { exit_code: 3, path: '/data/x.csv' },
  })
  assert.deepEqual(Object.keys(done), ['task_id', 'state', 'attempts', 'started_at', 'ended_at', 'outputs'])
  assert.deepEqual(taskJson({ taskId: 'never', state: 'pending', attempt: 0, startedAt: null, endedAt: null, outputs: null }), {
    task_id: 'never',
    state: 'pending',
    attempts: 0,
    started_at: null,
    ended_at: null,
    outputs: {},
  })
})

test('triggerJson, dagJson and logLineJson', () => {
  assert.deepEqual(triggerJson({ runId: 'r', state: 'queued' }), { run_id: 'r', state: 'queued' })
  assert.deepEqual(dagJson({ dagId: 'd', paused: true, file: 'dags/d.yaml' }, undefined, 2), { dag_id: 'd', paused: true, schedule: null, file: 'dags/d.yaml', import_errors: 2 })
  assert.deepEqual(logLineJson(3, { stream: 'stderr', line: 'oops', at: at('2026-01-01T00:00:00.007Z') }), { attempt: 3, stream: 'stderr', line: 'oops', at: '2026-01-01T00:00:00.007Z' })
  assert.equal(isoOrNull(undefined), null)
})

test('datasetJson and datasetVersionJson: the SPEC keys first, in order; produced_by null for an import', () => {
  const summary = datasetJson({ name: 'events', latestVersion: 3, rows: 10, createdAt: at('2026-01-01T00:00:00Z'), updatedAt: at('2026-01-02T00:00:00.5Z') })
  assert.deepEqual(summary, { name: 'events', version: 3, rows: 10, created_at: '2026-01-01T00:00:00.000Z', updated_at: '2026-01-02T00:00:00.500Z' })
  const base = {
    dataset: 'events',
    version: 2,
    rows: 5,
    columns: [{ name: 'ts', type: 'timestamp' }],
    createdAt: at('2026-01-01T00:00:00Z'),
    bytes: 100,
    producedKind: 'ingest',
    actor: null,
    inputs: [{ dataset: 'raw', version: 1 }],
    expectations: null,
    badRows: { count: 2, location: 'bad_rows.parquet' },
  }
  const fromTask = datasetVersionJson({ ...base, runId: 'r', taskId: 't', runPruned: false })
  assert.deepEqual(Object.keys(fromTask).slice(0, 6), ['name', 'version', 'rows', 'columns', 'created_at', 'produced_by'])
  assert.deepEqual(fromTask.produced_by, { run_id: 'r', task_id: 't', run_pruned: false })
  assert.deepEqual(datasetVersionJson({ ...base, runId: 'r', taskId: 't', runPruned: true }).produced_by, { run_id: 'r', task_id: 't', run_pruned: true })
  assert.deepEqual(fromTask.columns, [{ name: 'ts', type: 'timestamp' }])
  assert.equal(fromTask.created_at, '2026-01-01T00:00:00.000Z')
  assert.deepEqual(fromTask.bad_rows, { count: 2, location: 'bad_rows.parquet' })
  const imported = datasetVersionJson({ ...base, runId: null, taskId: null, runPruned: false, producedKind: 'import', actor: 'alice', badRows: null })
  assert.equal(imported.produced_by, null)
  assert.equal(imported.actor, 'alice')
  assert.equal(imported.bad_rows, null)
})
