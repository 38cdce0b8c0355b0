// Task instance and run states, the transitions between them, and the SQL CHECK
// constraints generated from the same constants (SPEC section 3).
//
// Terminology:
//   run            one execution of a DAG for a logical date (or a manual trigger).
//   task instance  one task of one run; it owns a state and a count of attempts.
//   attempt        one try at running a task instance; a retry starts a new attempt.
//   clear          the user re-opens finished work (`cairn clear`); the only way
//                  back out of a terminal state.
//
// The tables below are the engine's safety net: the store refuses any state change
// they do not list, so a race between scheduler, worker and CLI fails loudly instead
// of, say, a late "success" overwriting a cancel.

export const TASK_STATES = {
  pending: 'pending',
  queued: 'queued',
  running: 'running',
  up_for_retry: 'up_for_retry',
  success: 'success',
  failed: 'failed',
  upstream_failed: 'upstream_failed',
  skipped: 'skipped',
  cancelled: 'cancelled',
} as const;
export type TaskState = (typeof TASK_STATES)[keyof typeof TASK_STATES];
export const TASK_STATE_LIST: readonly TaskState[] = Object.values(TASK_STATES);

export const RUN_STATES = {
  queued: 'queued',
  running: 'running',
  success: 'success',
  failed: 'failed',
  cancelled: 'cancelled',
} as const;
export type RunState = (typeof RUN_STATES)[keyof typeof RUN_STATES];
export const RUN_STATE_LIST: readonly RunState[] = Object.values(RUN_STATES);

const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set<TaskState>([
  'success',
  'failed',
  'upstream_failed',
  'skipped',
  'cancelled',
]);
const TERMINAL_RUN_STATES: ReadonlySet<RunState> = new Set<RunState>(['success', 'failed', 'cancelled']);

export function isTerminalTaskState(state: TaskState): boolean {
  return TERMINAL_TASK_STATES.has(state);
}

export function isTerminalRunState(state: RunState): boolean {
  return TERMINAL_RUN_STATES.has(state);
}

/**
 * Allowed task state changes. Every terminal state's only way out is `clear`
 * (terminal -> pending, see `isTaskClearTransition`), so a finished task can never be
 * moved by the scheduler or a worker, only re-opened by a user.
 */
export const TASK_TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  // The scheduler decides from the trigger rule: queue it, or settle it without running.
  // cancelled: the run was cancelled before the task started.
  pending: ['queued', 'skipped', 'upstream_failed', 'cancelled'],
  // pending: a worker that is draining (shutdown) hands back work it claimed but never
  // started, so another worker can take it without burning an attempt.
  queued: ['running', 'cancelled', 'pending'],
  // skipped: the worker renders `when` just before running the operator (SPEC section 2
  // renders templates "when the task is about to run"), so a falsy `when` is found here.
  // A timeout or a lost worker is `failed` or `up_for_retry`, never a state of its own.
  running: ['success', 'failed', 'up_for_retry', 'skipped', 'cancelled'],
  // Re-queued once its retry delay has passed; a cancel during the delay ends it.
  up_for_retry: ['queued', 'cancelled'],
  success: ['pending'],
  failed: ['pending'],
  upstream_failed: ['pending'],
  skipped: ['pending'],
  cancelled: ['pending'],
};

/**
 * Allowed run state changes. A finished run goes back to `queued` only through `clear`
 * (see `isRunClearTransition`), so that it waits for a free `max_active_runs` slot
 * like any new run.
 */
export const RUN_TRANSITIONS: Readonly<Record<RunState, readonly RunState[]>> = {
  // failed: the DAG was removed or became invalid while the run waited for a slot.
  queued: ['running', 'failed', 'cancelled'],
  running: ['success', 'failed', 'cancelled'],
  success: ['queued'],
  failed: ['queued'],
  cancelled: ['queued'],
};

export function canTransitionTask(from: TaskState, to: TaskState): boolean {
  return TASK_TRANSITIONS[from].includes(to);
}

export function canTransitionRun(from: RunState, to: RunState): boolean {
  return RUN_TRANSITIONS[from].includes(to);
}

/** The transitions that only `clear` may make; the store should require that reason for them. */
export function isTaskClearTransition(from: TaskState, to: TaskState): boolean {
  return isTerminalTaskState(from) && to === 'pending';
}

export function isRunClearTransition(from: RunState, to: RunState): boolean {
  return isTerminalRunState(from) && to === 'queued';
}

// The column name is spliced into DDL, so it must be a plain identifier: anything else
// is a programming error, not user input to escape.
const SQL_IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

function checkInSql(column: string, values: readonly string[]): string {
  if (!SQL_IDENTIFIER.test(column)) {
    throw new TypeError(`not a plain SQL identifier: ${JSON.stringify(column)}`);
  }
  // The values are our own constants ([a-z_]+), so quoting needs no escaping.
  return `CHECK (${column} IN (${values.map((v) => `'${v}'`).join(', ')}))`;
}

/** `CHECK (column IN ('pending', ...))` for a task-state column, generated from TASK_STATES. */
export function taskStateCheckSql(column: string): string {
  return checkInSql(column, TASK_STATE_LIST);
}

/** `CHECK (column IN ('queued', ...))` for a run-state column, generated from RUN_STATES. */
export function runStateCheckSql(column: string): string {
  return checkInSql(column, RUN_STATE_LIST);
}
