import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  RUN_STATE_LIST,
  RUN_TRANSITIONS,
  attemptStateCheckSql,
  TASK_STATE_LIST,
  TASK_TRANSITIONS,
  canTransitionRun,
  canTransitionTask,
  isRunClearTransition,
  isTaskClearTransition,
  isTaskUserTransition,
  isTerminalRunState,
  isTerminalTaskState,
  runStateCheckSql,
  runStatesLeadingTo,
  taskStateCheckSql,
  taskStatesLeadingTo,
} from '../../engine/state/states.ts';
import type { RunState, TaskState } from '../../engine/state/states.ts';

// From SPEC section 3, spelled out so the test does not trust the engine's own lists.
const SPEC_TASK_STATES = [
  'pending', 'queued', 'running', 'up_for_retry',
  'success', 'failed', 'upstream_failed', 'skipped', 'cancelled',
];
const SPEC_TERMINAL_TASK = ['success', 'failed', 'upstream_failed', 'skipped', 'cancelled'];
const SPEC_RUN_STATES = ['queued', 'running', 'success', 'failed', 'cancelled'];
const SPEC_TERMINAL_RUN = ['success', 'failed', 'cancelled'];

// Every allowed edge, as "from>to". Any pair not listed must be refused.
const EXPECTED_TASK_EDGES = new Set([
  'pending>queued', 'pending>skipped', 'pending>upstream_failed', 'pending>cancelled',
  'queued>running', 'queued>cancelled',
  'running>success', 'running>failed', 'running>up_for_retry', 'running>skipped', 'running>cancelled',
  // a draining worker hands a running attempt back
  'running>queued',
  'up_for_retry>queued', 'up_for_retry>cancelled',
  // clear
  'success>pending', 'failed>pending', 'upstream_failed>pending', 'skipped>pending', 'cancelled>pending',
  // mark success / mark failed
  'success>failed', 'failed>success',
  'upstream_failed>success', 'upstream_failed>failed', 'skipped>success', 'skipped>failed', 'cancelled>success', 'cancelled>failed',
]);
const EXPECTED_RUN_EDGES = new Set([
  'queued>running', 'queued>failed', 'queued>cancelled',
  'running>success', 'running>failed', 'running>cancelled',
  // clear
  'success>queued', 'failed>queued', 'cancelled>queued',
]);

function reachable<S extends string>(table: Readonly<Record<S, readonly S[]>>, from: S): Set<S> {
  const seen = new Set<S>([from]);
  const todo = [from];
  for (let s = todo.pop(); s !== undefined; s = todo.pop()) {
    for (const next of table[s]) if (!seen.has(next)) seen.add(next), todo.push(next);
  }
  return seen;
}

describe('task states', () => {
  it('are exactly the SPEC states, terminal ones included', () => {
    assert.deepEqual([...TASK_STATE_LIST], SPEC_TASK_STATES);
    assert.deepEqual(TASK_STATE_LIST.filter(isTerminalTaskState), SPEC_TERMINAL_TASK);
  });

  it('allow exactly the expected transitions', () => {
    for (const from of TASK_STATE_LIST) {
      for (const to of TASK_STATE_LIST) {
        assert.equal(canTransitionTask(from, to), EXPECTED_TASK_EDGES.has(`${from}>${to}`), `${from} -> ${to}`);
      }
    }
  });

  it('leave a terminal state only through clear (to pending) or mark (to success or failed), both a user\'s', () => {
    for (const from of TASK_STATE_LIST.filter(isTerminalTaskState)) {
      assert.deepEqual(TASK_TRANSITIONS[from].filter((to) => to !== 'success' && to !== 'failed'), ['pending'], from);
      assert.equal(isTaskClearTransition(from, 'pending'), true, from);
      for (const to of TASK_TRANSITIONS[from]) assert.equal(isTaskUserTransition(from, to), true, `${from} -> ${to}`);
    }
  });

  it('give the store the from-states of each target, without the user-only ones unless a user asks', () => {
    assert.deepEqual(taskStatesLeadingTo('queued'), ['pending', 'running', 'up_for_retry']);
    assert.deepEqual(taskStatesLeadingTo('pending'), []);
    assert.deepEqual(taskStatesLeadingTo('pending', { byUser: true }), ['success', 'failed', 'upstream_failed', 'skipped', 'cancelled']);
    assert.deepEqual(taskStatesLeadingTo('success'), ['running']);
    assert.deepEqual(taskStatesLeadingTo('success', { byUser: true }), ['running', 'failed', 'upstream_failed', 'skipped', 'cancelled']);
    assert.deepEqual(taskStatesLeadingTo('cancelled'), ['pending', 'queued', 'running', 'up_for_retry']);
    for (const to of TASK_STATE_LIST) {
      for (const from of TASK_STATE_LIST) {
        assert.equal(taskStatesLeadingTo(to, { byUser: true }).includes(from), canTransitionTask(from, to), `${from} -> ${to}`);
      }
    }
    assert.deepEqual(runStatesLeadingTo('queued'), []);
    assert.deepEqual(runStatesLeadingTo('queued', { byUser: true }), ['success', 'failed', 'cancelled']);
    assert.deepEqual(runStatesLeadingTo('failed'), ['queued', 'running']);
  });

  it('mark no transition between unfinished states as a clear', () => {
    for (const from of TASK_STATE_LIST) {
      for (const to of TASK_TRANSITIONS[from]) {
        assert.equal(isTaskClearTransition(from, to), isTerminalTaskState(from) && to === 'pending', `${from} -> ${to}`);
      }
    }
    assert.equal(isTaskClearTransition('running', 'queued'), false, 'a drain hand-back is not a clear');
  });

  it('have no self-transitions and name only known states', () => {
    for (const [from, tos] of Object.entries(TASK_TRANSITIONS) as [TaskState, readonly TaskState[]][]) {
      assert.ok(!tos.includes(from), from);
      for (const to of tos) assert.ok(TASK_STATE_LIST.includes(to), `${from} -> ${to}`);
    }
  });

  it('reach every state from pending, and a terminal state from every state without clear', () => {
    assert.deepEqual([...reachable(TASK_TRANSITIONS, 'pending')].sort(), [...TASK_STATE_LIST].sort());
    const withoutClear = Object.fromEntries(
      TASK_STATE_LIST.map((s) => [s, TASK_TRANSITIONS[s].filter((t) => !isTaskUserTransition(s, t))]),
    ) as Record<TaskState, TaskState[]>;
    for (const s of TASK_STATE_LIST) {
      assert.ok([...reachable(withoutClear, s)].some(isTerminalTaskState), `${s} can never finish`);
    }
  });
});

describe('run states', () => {
  it('are exactly the SPEC states, terminal ones included', () => {
    assert.deepEqual([...RUN_STATE_LIST], SPEC_RUN_STATES);
    assert.deepEqual(RUN_STATE_LIST.filter(isTerminalRunState), SPEC_TERMINAL_RUN);
  });

  it('allow exactly the expected transitions', () => {
    for (const from of RUN_STATE_LIST) {
      for (const to of RUN_STATE_LIST) {
        assert.equal(canTransitionRun(from, to), EXPECTED_RUN_EDGES.has(`${from}>${to}`), `${from} -> ${to}`);
      }
    }
  });

  it('leave a terminal state only through clear, back to queued', () => {
    for (const from of RUN_STATE_LIST.filter(isTerminalRunState)) {
      assert.deepEqual(RUN_TRANSITIONS[from], ['queued'], from);
      assert.equal(isRunClearTransition(from, 'queued'), true, from);
    }
    assert.equal(isRunClearTransition('running', 'queued'), false);
  });

  it('have no self-transitions and name only known states', () => {
    for (const [from, tos] of Object.entries(RUN_TRANSITIONS) as [RunState, readonly RunState[]][]) {
      assert.ok(!tos.includes(from), from);
      for (const to of tos) assert.ok(RUN_STATE_LIST.includes(to), `${from} -> ${to}`);
    }
  });
});

/** Reads the quoted values back out of `CHECK (col IN ('a', 'b'))`. */
function parseCheck(sql: string): { column: string; values: string[] } {
  const m = /^CHECK \(([a-z_][a-z0-9_]*) IN \(((?:'[a-z_]+'(?:, )?)+)\)\)$/.exec(sql);
  assert.ok(m, `unexpected CHECK text: ${sql}`);
  return { column: m[1]!, values: [...m[2]!.matchAll(/'([a-z_]+)'/g)].map((x) => x[1]!) };
}

describe('generated SQL CHECK constraints', () => {
  it('list every task state, in order', () => {
    assert.equal(
      taskStateCheckSql('state'),
      "CHECK (state IN ('pending', 'queued', 'running', 'up_for_retry', 'success', 'failed', 'upstream_failed', 'skipped', 'cancelled'))",
    );
    assert.deepEqual(parseCheck(taskStateCheckSql('task_state')), { column: 'task_state', values: SPEC_TASK_STATES });
  });

  it('list every run state, in order', () => {
    assert.equal(runStateCheckSql('state'), "CHECK (state IN ('queued', 'running', 'success', 'failed', 'cancelled'))");
    assert.deepEqual(parseCheck(runStateCheckSql('run_state')), { column: 'run_state', values: SPEC_RUN_STATES });
  });

  it('list every attempt state, in order', () => {
    assert.equal(attemptStateCheckSql('state'), "CHECK (state IN ('queued', 'running', 'success', 'failed', 'skipped', 'lost', 'cancelled'))");
  });

  it('refuse a column that is not a plain identifier', () => {
    for (const bad of ['', 'State', '"state"', 'state) OR (1=1', 'state; drop table runs', '1state', 'a.b']) {
      assert.throws(() => taskStateCheckSql(bad), TypeError, bad);
      assert.throws(() => runStateCheckSql(bad), TypeError, bad);
    }
  });
});
