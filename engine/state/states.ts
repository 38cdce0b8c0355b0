// Task instance and run states, the transitions between them, and the SQL CHECK
// constraints generated from the same constants (SPEC section 3).
//
// Terminology:
//   run            one execution of a DAG for a logical date (or a manual trigger).
//   task instance  one task of one run; it owns a state and a count of attempts.
//   attempt        one try at running a task instance; a retry starts a new attempt.
//   clear          the user re-opens finished work (`cairn clear`): terminal -> pending.
//   mark           the user sets a finished task instance's outcome (mark success / failed).
//                  Clear and mark are the only ways out of a terminal state, and only a
//                  user makes them (see isTaskUserTransition).
//
// The tables below are the engine's safety net: every state change of a task instance or
// run goes through one store function per entity (engine/store/transitions.ts), whose SQL
// only matches rows in a state the table allows, so a race between scheduler, worker and
// CLI is refused instead of, say, a late "success" overwriting a cancel.

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

/**
 * States of one attempt (one try of a task instance). An attempt has no transition table of its
 * own: every write to it is fenced by its claim id, and its task instance's change is checked.
 * `lost`: the worker stopped heartbeating (the task instance then fails or retries).
 */
export const ATTEMPT_STATES = {
  queued: 'queued',
  running: 'running',
  success: 'success',
  failed: 'failed',
  skipped: 'skipped',
  lost: 'lost',
  cancelled: 'cancelled',
} as const;
export type AttemptState = (typeof ATTEMPT_STATES)[keyof typeof ATTEMPT_STATES];
export const ATTEMPT_STATE_LIST: readonly AttemptState[] = Object.values(ATTEMPT_STATES);

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
 * Allowed task state changes. A terminal state is left only by a user: `clear`
 * (terminal -> pending) or `mark` (terminal -> success / failed), see
 * `isTaskUserTransition`; a finished task can never be moved by the scheduler or a worker.
 */
export const TASK_TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  // The scheduler decides from the trigger rule: queue it, or settle it without running.
  // cancelled: the run was cancelled before the task started.
  pending: ['queued', 'skipped', 'upstream_failed', 'cancelled'],
  queued: ['running', 'cancelled'],
  // skipped: the worker renders `when` just before running the operator (SPEC section 2
  // renders templates "when the task is about to run"), so a falsy `when` is found here.
  // A timeout or a lost worker is `failed` or `up_for_retry`, never a state of its own.
  // queued: a draining worker (shutdown) stops an attempt past its grace period and hands
  // it back, same attempt number and no failure counted, so another worker can take it.
  running: ['success', 'failed', 'up_for_retry', 'skipped', 'cancelled', 'queued'],
  // Re-queued once its retry delay has passed; a cancel during the delay ends it.
  up_for_retry: ['queued', 'cancelled'],
  // pending: clear; success / failed: mark.
  success: ['pending', 'failed'],
  failed: ['pending', 'success'],
  upstream_failed: ['pending', 'success', 'failed'],
  skipped: ['pending', 'success', 'failed'],
  cancelled: ['pending', 'success', 'failed'],
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

/** The transitions that only `clear` makes. */
export function isTaskClearTransition(from: TaskState, to: TaskState): boolean {
  return isTerminalTaskState(from) && to === 'pending';
}

export function isRunClearTransition(from: RunState, to: RunState): boolean {
  return isTerminalRunState(from) && to === 'queued';
}

/** Out of a terminal state (clear, mark): only a user's action may make it, never the engine. */
export function isTaskUserTransition(from: TaskState, to: TaskState): boolean {
  return isTerminalTaskState(from) && canTransitionTask(from, to);
}

function isRunUserTransition(from: RunState, to: RunState): boolean {
  return isTerminalRunState(from) && canTransitionRun(from, to);
}

/** Who asks for a change: the engine (scheduler, worker) or a user (clear, mark, cancel). */
export interface TransitionScope {
  /** Include the transitions out of terminal states, which only a user may make. @default false */
  byUser?: boolean;
}

/**
 * The states a task instance may go to `to` from, read off TASK_TRANSITIONS: the store puts
 * exactly these in the WHERE clause of the change, so the table is the check.
 */
export function taskStatesLeadingTo(to: TaskState, scope: TransitionScope = {}): TaskState[] {
  return TASK_STATE_LIST.filter((from) => canTransitionTask(from, to) && (scope.byUser === true || !isTaskUserTransition(from, to)));
}

/** The states a run may go to `to` from (see taskStatesLeadingTo). */
export function runStatesLeadingTo(to: RunState, scope: TransitionScope = {}): RunState[] {
  return RUN_STATE_LIST.filter((from) => canTransitionRun(from, to) && (scope.byUser === true || !isRunUserTransition(from, to)));
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

/** `CHECK (column IN ('queued', ...))` for an attempt-state column, generated from ATTEMPT_STATES. */
export function attemptStateCheckSql(column: string): string {
  return checkInSql(column, ATTEMPT_STATE_LIST);
}
