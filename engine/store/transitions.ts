/**
 * The one way a task instance's state changes (transitionTasks) and the one way a run's state
 * changes (transitionRuns). Each puts the states the transition table allows
 * (engine/state/states.ts) into its UPDATE's WHERE clause and writes the history rows of exactly
 * the rows it changed, in the same statement. A change the table refuses matches no row: the
 * caller gets back only the rows that changed, and decides whether a refusal is normal (another
 * scheduler got there first) or a broken invariant (throw TransitionRefused).
 */
import type { RunState, TaskState, TransitionScope } from '../state/states.ts'
import { runStatesLeadingTo, taskStatesLeadingTo } from '../state/states.ts'
import type { Queryable } from './queryable.ts'

/** Columns a state change may set along with the state. */
export interface TaskColumns {
  /** 'next': one more than now (a new attempt). */
  attempt?: number | 'next'
  failures?: number
  queuedAt?: Date | null
  startedAt?: Date | null
  endedAt?: Date | null
  nextRetryAt?: Date | null
  failureKind?: string | null
  message?: string | null
  outputs?: Record<string, unknown> | null
}

const TASK_COLUMNS: Record<Exclude<keyof TaskColumns, 'attempt'>, { column: string; type: string }> = {
  failures: { column: 'failures', type: 'int' },
  queuedAt: { column: 'queued_at', type: 'timestamptz' },
  startedAt: { column: 'started_at', type: 'timestamptz' },
  endedAt: { column: 'ended_at', type: 'timestamptz' },
  nextRetryAt: { column: 'next_retry_at', type: 'timestamptz' },
  failureKind: { column: 'failure_kind', type: 'text' },
  message: { column: 'message', type: 'text' },
  outputs: { column: 'outputs', type: 'jsonb' },
}

/**
 * One task instance to change. A task instance is named by its run and task; should task instances
 * ever be mapped (several per task), their index joins this key.
 */
export interface TaskChange {
  runId: string
  taskId: string
  /** Only while the instance is at this attempt: a result for an older attempt is refused. */
  attempt?: number
  reason: string
  /** Every change of one call sets the same columns. */
  set?: TaskColumns
}

export interface TaskTransition extends TransitionScope {
  to: TaskState
  /** Narrows the states the table allows (a worker's result: only from `running`); never widens them. */
  from?: readonly TaskState[]
  /** Who asked, recorded in the history rows (a user's name or token); null for the engine. */
  actor?: string | null
  changes: readonly TaskChange[]
}

export interface ChangedTask {
  runId: string
  taskId: string
  /** The attempt number after the change. */
  attempt: number
  from: TaskState
}

/** A state change the transition table (or the row's current state) did not allow. */
export class TransitionRefused extends Error {
  override name = 'TransitionRefused'
}

function allowedFrom<S extends string>(entity: string, to: S, table: readonly S[], narrowed: readonly S[] | undefined): S[] {
  if (narrowed === undefined) return [...table]
  const wider = narrowed.filter((s) => !table.includes(s))
  if (wider.length > 0) throw new TransitionRefused(`the ${entity} transition table does not allow ${wider.join(', ')} -> ${to}`)
  return [...narrowed]
}

/** Changes task instances to `transition.to`; returns those that changed (the others were in a state the table does not allow, or at another attempt). */
export async function transitionTasks(q: Queryable, transition: TaskTransition): Promise<ChangedTask[]> {
  const { changes } = transition
  if (changes.length === 0) return []
  const keys = Object.keys(changes[0]!.set ?? {}).sort() as (keyof TaskColumns)[]
  for (const change of changes) {
    const own = Object.keys(change.set ?? {}).sort()
    if (own.join() !== keys.join()) throw new TypeError(`transitionTasks: every change must set the same columns (${keys.join(', ')}), not ${own.join(', ')}`)
  }
  const values: unknown[] = [changes.map((c) => c.runId), changes.map((c) => c.taskId), changes.map((c) => c.attempt ?? null), changes.map((c) => c.reason)]
  const inputs: string[] = []
  const columns: string[] = []
  let bumpAttempt = false
  for (const key of keys) {
    if (key === 'attempt') {
      const attempts = changes.map((c) => c.set!.attempt!)
      if (attempts.every((a) => a === 'next')) bumpAttempt = true
      else if (attempts.every((a) => typeof a === 'number')) {
        values.push(attempts)
        inputs.push(`$${values.length}::int[]`)
        columns.push('attempt')
      } else throw new TypeError("transitionTasks: attempt must be 'next' for every change or a number for every change")
      continue
    }
    const { column, type } = TASK_COLUMNS[key]
    values.push(changes.map((c) => {
      const value = c.set![key]
      return type === 'jsonb' && value !== null && value !== undefined ? JSON.stringify(value) : value
    }))
    inputs.push(`$${values.length}::${type}[]`)
    columns.push(column)
  }
  const rows = await transitionTasksFrom<{ run_id: string; task_id: string }>(q, {
    ...transition,
    source: {
      sql: `SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[]${inputs.map((i) => `, ${i}`).join('')}) AS c(run_id, task_id, fence, reason${columns.map((n) => `, ${n}`).join('')})`,
      values,
      columns,
    },
    bumpAttempt,
  })
  return rows.flatMap((r) => (r.changed ? [r.changed] : []))
}

/**
 * transitionTasks over the rows of one SQL statement, all in one statement: `source.sql` (for
 * example the UPDATE of attempts that a claim or a result makes, with RETURNING) yields the task
 * instances to change as columns run_id, task_id, fence (their attempt, or null), reason, and one
 * column per task instance column in `source.columns` (queued_at, ended_at, ...) to set. Returns
 * every source row, with what changed (undefined where the table or the fence refused it).
 */
export async function transitionTasksFrom<R>(
  q: Queryable,
  transition: Omit<TaskTransition, 'changes'> & { source: { sql: string; values: readonly unknown[]; columns: readonly string[] }; bumpAttempt?: boolean },
): Promise<(R & { changed: ChangedTask | undefined })[]> {
  const { to, source } = transition
  const from = allowedFrom('task', to, taskStatesLeadingTo(to, transition), transition.from)
  const values = [...source.values, from, to, transition.actor ?? null]
  const [$from, $to, $actor] = [values.length - 2, values.length - 1, values.length].map((n) => `$${n}`)
  for (const column of source.columns) if (!/^[a-z_]+$/.test(column)) throw new TypeError(`not a task instance column: ${column}`)
  const assignments = [...(transition.bumpAttempt ? ['attempt = ti.attempt + 1'] : []), ...source.columns.map((column) => `${column} = c.${column}`)]
  const { rows } = await q.query<R & { new_attempt: number | null; from_state: TaskState | null }>(
    `WITH c AS (
       ${source.sql}
     ), old AS (
       SELECT ti.run_id, ti.task_id, ti.state FROM cairn.task_instance ti JOIN c ON ti.run_id = c.run_id AND ti.task_id = c.task_id
       WHERE ti.state = ANY(${$from}::text[]) AND (c.fence IS NULL OR ti.attempt = c.fence)
       FOR UPDATE OF ti
     ), changed AS (
       UPDATE cairn.task_instance ti SET state = ${$to}${assignments.map((a) => `, ${a}`).join('')}
       FROM old JOIN c ON c.run_id = old.run_id AND c.task_id = old.task_id
       WHERE ti.run_id = old.run_id AND ti.task_id = old.task_id
       RETURNING ti.run_id, ti.task_id, ti.attempt, old.state AS from_state, c.reason
     ), history AS (
       INSERT INTO cairn.state_history (run_id, task_id, attempt, from_state, to_state, reason, actor)
       SELECT run_id, task_id, NULLIF(attempt, 0), from_state, ${$to}, reason, ${$actor} FROM changed
     )
     SELECT c.*, changed.attempt AS new_attempt, changed.from_state FROM c LEFT JOIN changed ON changed.run_id = c.run_id AND changed.task_id = c.task_id`,
    values,
  )
  return rows.map(({ new_attempt, from_state, ...row }) => {
    const r = row as unknown as R & { run_id: string; task_id: string }
    return { ...r, changed: from_state === null ? undefined : { runId: r.run_id, taskId: r.task_id, attempt: new_attempt!, from: from_state } }
  })
}

export interface RunTransition extends TransitionScope {
  to: RunState
  /** Narrows the states the table allows; never widens them. */
  from?: readonly RunState[]
  runIds: readonly string[]
  reason: string
  actor?: string | null
  /** Set with the state (the same values for every run). */
  set?: { startedAt?: Date | null; endedAt?: Date | null }
}

/** Changes runs to `transition.to`; returns those that changed, with the state each left. */
export async function transitionRuns(q: Queryable, transition: RunTransition): Promise<{ runId: string; from: RunState }[]> {
  const { runIds, to } = transition
  if (runIds.length === 0) return []
  const from = allowedFrom('run', to, runStatesLeadingTo(to, transition), transition.from)
  if (from.length === 0) return []
  const values: unknown[] = [runIds, from, to, transition.reason, transition.actor ?? null]
  const assignments: string[] = []
  for (const [key, column] of [['startedAt', 'started_at'], ['endedAt', 'ended_at']] as const) {
    if (transition.set && Object.hasOwn(transition.set, key)) {
      values.push(transition.set[key] ?? null)
      assignments.push(`, ${column} = $${values.length}::timestamptz`)
    }
  }
  const { rows } = await q.query<{ run_id: string; from_state: RunState }>(
    `WITH old AS (
       SELECT run_id, state FROM cairn.run WHERE run_id = ANY($1::text[]) AND state = ANY($2::text[]) FOR UPDATE
     ), changed AS (
       UPDATE cairn.run r SET state = $3${assignments.join('')} FROM old WHERE r.run_id = old.run_id
       RETURNING r.run_id, old.state AS from_state
     ), history AS (
       INSERT INTO cairn.state_history (run_id, task_id, attempt, from_state, to_state, reason, actor)
       SELECT run_id, NULL, NULL, from_state, $3, $4, $5 FROM changed
     )
     SELECT run_id, from_state FROM changed`,
    values,
  )
  return rows.map((r) => ({ runId: r.run_id, from: r.from_state }))
}
