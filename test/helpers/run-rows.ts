/**
 * Reading what a run left in the database, for end-to-end tests: task instances, attempts, logs and
 * import errors, plus a cairn.yaml for worker processes started by spawnWorker.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Db } from '../../engine/store/db.ts'
import { canTransitionRun, canTransitionTask, isTerminalRunState, isTerminalTaskState } from '../../engine/state/states.ts'
import { waitFor } from './engine-extra.ts'

export interface TaskRow {
  task_id: string
  state: string
  attempt: number
  failures: number
  pool: string
  priority: number
  next_retry_at: Date | null
  queued_at: Date | null
  started_at: Date | null
  ended_at: Date | null
  outputs: Record<string, unknown> | null
  failure_kind: string | null
  message: string | null
}

export async function taskRows(db: Db, runId: string): Promise<Map<string, TaskRow>> {
  const { rows } = await db.query<TaskRow>(
    `SELECT task_id, state, attempt, failures, pool, priority, next_retry_at, queued_at, started_at, ended_at, outputs, failure_kind, message
     FROM cairn.task_instance WHERE run_id = $1 ORDER BY task_id`,
    [runId],
  )
  return new Map(rows.map((r) => [r.task_id, r]))
}

export interface AttemptRow {
  run_id: string
  task_id: string
  attempt: number
  state: string
  queued_at: Date
  started_at: Date | null
  ended_at: Date | null
  exit_code: number | null
  failure_kind: string | null
  message: string | null
}

/** Attempts of the given runs (all tasks, or one), oldest first. */
export async function attemptRows(db: Db, runIds: string | readonly string[], taskId?: string): Promise<AttemptRow[]> {
  const ids = typeof runIds === 'string' ? [runIds] : [...runIds]
  const { rows } = await db.query<AttemptRow>(
    `SELECT run_id, task_id, attempt, state, queued_at, started_at, ended_at, exit_code, failure_kind, message
     FROM cairn.attempt WHERE run_id = ANY($1::text[]) AND ($2::text IS NULL OR task_id = $2) ORDER BY task_id, attempt`,
    [ids, taskId ?? null],
  )
  return rows
}

export async function logLines(db: Db, runId: string, taskId: string): Promise<{ attempt: number; stream: string; line: string }[]> {
  const { rows } = await db.query<{ attempt: number; stream: string; line: string }>(
    'SELECT attempt, stream, line FROM cairn.task_log WHERE run_id = $1 AND task_id = $2 ORDER BY attempt, id',
    [runId, taskId],
  )
  return rows
}

/** Fails with the loader's diagnostics when a DAG file of the test did not load. */
export async function assertNoImportErrors(db: Db): Promise<void> {
  const { rows } = await db.query<{ file: string; diagnostics: unknown }>('SELECT file, diagnostics FROM cairn.import_error')
  if (rows.length > 0) throw new Error(`DAG files did not load: ${JSON.stringify(rows, null, 2)}`)
}

/**
 * A `cairn worker` process syncs cairn.pool from the cairn.yaml in its working directory at start
 * (deleting pools that file does not name), so a test that needs pools writes them there too.
 */
export function writeCairnYaml(dir: string, pools: Record<string, { slots: number }>): void {
  const lines = ['pools:', ...Object.entries(pools).map(([name, p]) => `  ${name}: { slots: ${p.slots} }`)]
  writeFileSync(join(dir, 'cairn.yaml'), `${lines.join('\n')}\n`)
}

/** The one polling helper of the tests (engine-extra.ts): undefined and false mean "not yet". */
export { waitFor }

/** The most intervals of [start, end) that overlap at any instant. */
export function maxOverlap(intervals: readonly { start: number; end: number }[]): number {
  const events = intervals.flatMap((i) => [
    { at: i.start, delta: 1 },
    { at: i.end, delta: -1 },
  ])
  // Ends before starts at the same instant: touching intervals do not overlap.
  events.sort((a, b) => a.at - b.at || a.delta - b.delta)
  let now = 0
  let most = 0
  for (const e of events) {
    now += e.delta
    most = Math.max(most, now)
  }
  return most
}

/** Waits until the scheduler has loaded every named DAG (fails early with the import errors). */
export async function waitForDags(db: Db, dagIds: readonly string[], timeoutMs = 30_000): Promise<void> {
  await waitFor(
    `DAGs ${dagIds.join(', ')} to load`,
    async () => {
      const { rows } = await db.query<{ loaded: number; errors: number }>(
        `SELECT (SELECT count(*) FROM cairn.dag WHERE dag_id = ANY($1::text[]) AND version_id IS NOT NULL)::int AS loaded,
                (SELECT count(*) FROM cairn.import_error)::int AS errors`,
        [dagIds],
      )
      return rows[0]!.loaded === dagIds.length || rows[0]!.errors > 0 ? true : undefined
    },
    timeoutMs,
  )
  await assertNoImportErrors(db)
}

/**
 * Every state change the history of these runs records, checked against the transition tables:
 * returns the illegal ones as `task from -> to (reason)` (empty when the engine kept to the tables).
 * Out of a terminal state only a user may move a row, so those must carry a clear or mark reason.
 */
export async function illegalHistory(db: Db, runIds: string | readonly string[]): Promise<string[]> {
  const { rows } = await db.query<{ task_id: string | null; from_state: string | null; to_state: string; reason: string }>(
    'SELECT task_id, from_state, to_state, reason FROM cairn.state_history WHERE run_id = ANY($1::text[]) ORDER BY id',
    [typeof runIds === 'string' ? [runIds] : runIds],
  )
  const bad: string[] = []
  for (const r of rows) {
    if (r.from_state === null) continue
    const from = r.from_state as never
    const to = r.to_state as never
    const legal = r.task_id === null ? canTransitionRun(from, to) : canTransitionTask(from, to)
    const terminal = r.task_id === null ? isTerminalRunState(from) : isTerminalTaskState(from)
    if (!legal || (terminal && !/clear|mark/.test(r.reason))) bad.push(`${r.task_id ?? 'run'} ${r.from_state} -> ${r.to_state} (${r.reason})`)
  }
  return bad
}
