// Trigger rules: when a pending task may start, and what it becomes when it never can
// (SPEC section 3, Airflow's documented semantics).
//
// Like Airflow, a rule settles a task as soon as the upstream states known so far make
// the answer certain, instead of waiting for every upstream: `all_success` becomes
// `upstream_failed` the moment one upstream fails, even while others still run. Rules
// that do not wait (`one_*`, `always`) start the task as soon as their condition holds.
//
// `cancelled` upstreams count as `failed` everywhere below (also for `one_done`, which
// ignores `upstream_failed`): a cancelled task did not do its work, and cleanup or alert
// tasks (`one_failed`, `all_done`) should react to it as to a failure.

import { isTerminalTaskState } from './states.ts';
import type { RunState, TaskState } from './states.ts';

export const TRIGGER_RULES = {
  all_success: 'all_success',
  all_failed: 'all_failed',
  all_done: 'all_done',
  all_skipped: 'all_skipped',
  one_success: 'one_success',
  one_failed: 'one_failed',
  one_done: 'one_done',
  none_failed: 'none_failed',
  none_failed_min_one_success: 'none_failed_min_one_success',
  none_skipped: 'none_skipped',
  always: 'always',
} as const;
export type TriggerRule = (typeof TRIGGER_RULES)[keyof typeof TRIGGER_RULES];
export const TRIGGER_RULE_LIST: readonly TriggerRule[] = Object.values(TRIGGER_RULES);
export const DEFAULT_TRIGGER_RULE: TriggerRule = 'all_success';

export type TriggerDecision =
  | { kind: 'wait' }
  | { kind: 'run' }
  | { kind: 'skip' }
  | { kind: 'upstream_failed' };

const WAIT: TriggerDecision = { kind: 'wait' };
const RUN: TriggerDecision = { kind: 'run' };
const SKIP: TriggerDecision = { kind: 'skip' };
const UPSTREAM_FAILED: TriggerDecision = { kind: 'upstream_failed' };

interface UpstreamCounts {
  total: number;
  done: number;
  success: number;
  skipped: number;
  /** failed + cancelled: the upstream itself ran (or was meant to) and did not succeed. */
  failed: number;
  /** failed + cancelled + upstream_failed. */
  failedOrUpstreamFailed: number;
}

function countUpstream(states: readonly TaskState[]): UpstreamCounts {
  const c: UpstreamCounts = { total: states.length, done: 0, success: 0, skipped: 0, failed: 0, failedOrUpstreamFailed: 0 };
  for (const s of states) {
    if (isTerminalTaskState(s)) c.done++;
    if (s === 'success') c.success++;
    else if (s === 'skipped') c.skipped++;
    else if (s === 'failed' || s === 'cancelled') {
      c.failed++;
      c.failedOrUpstreamFailed++;
    } else if (s === 'upstream_failed') c.failedOrUpstreamFailed++;
  }
  return c;
}

/** Decides a pending task from the states of its direct upstream tasks (order does not matter). */
export function evaluateTriggerRule(rule: TriggerRule, upstreamStates: readonly TaskState[]): TriggerDecision {
  // Every rule is vacuously met without upstream (SPEC: such a task runs as soon as its run starts).
  if (upstreamStates.length === 0) return RUN;
  const c = countUpstream(upstreamStates);
  const allDone = c.done === c.total;
  switch (rule) {
    case 'all_success':
      // A failure outranks a skip: both are certain, but the failure is what the user must see.
      if (c.failedOrUpstreamFailed > 0) return UPSTREAM_FAILED;
      if (c.skipped > 0) return SKIP;
      return c.success === c.total ? RUN : WAIT;
    case 'all_failed':
      if (c.success + c.skipped > 0) return SKIP;
      return c.failedOrUpstreamFailed === c.total ? RUN : WAIT;
    case 'all_done':
      return allDone ? RUN : WAIT;
    case 'all_skipped':
      if (c.success + c.failedOrUpstreamFailed > 0) return SKIP;
      return c.skipped === c.total ? RUN : WAIT;
    case 'one_success':
      if (c.success > 0) return RUN;
      if (!allDone) return WAIT;
      return c.failedOrUpstreamFailed > 0 ? UPSTREAM_FAILED : SKIP;
    case 'one_failed':
      if (c.failedOrUpstreamFailed > 0) return RUN;
      return allDone ? SKIP : WAIT;
    case 'one_done':
      // Airflow's one_done counts only upstreams that ran to an end, not upstream_failed.
      if (c.success + c.failed > 0) return RUN;
      return allDone ? SKIP : WAIT;
    case 'none_failed':
      if (c.failedOrUpstreamFailed > 0) return UPSTREAM_FAILED;
      return allDone ? RUN : WAIT;
    case 'none_failed_min_one_success':
      if (c.failedOrUpstreamFailed > 0) return UPSTREAM_FAILED;
      if (!allDone) return WAIT;
      return c.success > 0 ? RUN : SKIP;
    case 'none_skipped':
      if (c.skipped > 0) return SKIP;
      return allDone ? RUN : WAIT;
    case 'always':
      return RUN;
  }
}

/**
 * The outcome of a run from its task states: null while any task is unfinished,
 * `success` when every task ended in `success` or `skipped`, else `failed`. A cancelled
 * task makes this `failed`: only the caller knows whether the run itself was cancelled
 * (and then records `cancelled` instead).
 */
export function runStateFromTasks(states: readonly TaskState[]): Extract<RunState, 'success' | 'failed'> | null {
  let ok = true;
  for (const s of states) {
    if (!isTerminalTaskState(s)) return null;
    if (s !== 'success' && s !== 'skipped') ok = false;
  }
  return ok ? 'success' : 'failed';
}
