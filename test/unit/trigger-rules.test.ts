import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TRIGGER_RULE_LIST, evaluateTriggerRule, runStateFromTasks } from '../../engine/state/trigger-rules.ts';
import type { TriggerDecision, TriggerRule } from '../../engine/state/trigger-rules.ts';
import type { TaskState } from '../../engine/state/states.ts';

// ---------------------------------------------------------------------------
// The oracle. It is written from the SPEC section 3 table, row by row, and shares
// nothing with the implementation: instead of counting, it decides "can this task
// still run?" by trying every way the unfinished upstreams could still end.
// ---------------------------------------------------------------------------

// Spelled out here rather than imported, so a mistake in the engine's lists cannot hide.
const ALL_STATES: readonly TaskState[] = [
  'pending', 'queued', 'running', 'up_for_retry',
  'success', 'failed', 'upstream_failed', 'skipped', 'cancelled',
];
const TERMINAL: readonly TaskState[] = ['success', 'failed', 'upstream_failed', 'skipped', 'cancelled'];
// SPEC "failed/upstream_failed"; cancelled counts as failed (documented choice of the engine).
const FAILED_OR_UPSTREAM_FAILED: readonly TaskState[] = ['failed', 'upstream_failed', 'cancelled'];
// SPEC one_done's "success or failed" names `failed` alone, so upstream_failed is not done-ness here.
const FAILED: readonly TaskState[] = ['failed', 'cancelled'];

type Ups = readonly TaskState[];
const isIn = (set: readonly TaskState[]) => (s: TaskState) => set.includes(s);
const every = (u: Ups, set: readonly TaskState[]) => u.every(isIn(set));
const some = (u: Ups, set: readonly TaskState[]) => u.some(isIn(set));

interface SpecRow {
  /** "runs when" column. */
  runsWhen: (u: Ups) => boolean;
  /** "otherwise becomes" column; null for "—". */
  otherwise: ((u: Ups) => 'skip' | 'upstream_failed') | null;
}

const SPEC_TABLE: Record<TriggerRule, SpecRow> = {
  all_success: {
    runsWhen: (u) => every(u, ['success']),
    otherwise: (u) => (some(u, FAILED_OR_UPSTREAM_FAILED) ? 'upstream_failed' : 'skip'),
  },
  all_failed: { runsWhen: (u) => every(u, FAILED_OR_UPSTREAM_FAILED), otherwise: () => 'skip' },
  all_done: { runsWhen: (u) => every(u, TERMINAL), otherwise: null },
  all_skipped: { runsWhen: (u) => every(u, ['skipped']), otherwise: () => 'skip' },
  one_success: {
    runsWhen: (u) => some(u, ['success']),
    otherwise: (u) => (some(u, FAILED_OR_UPSTREAM_FAILED) ? 'upstream_failed' : 'skip'),
  },
  one_failed: { runsWhen: (u) => some(u, FAILED_OR_UPSTREAM_FAILED), otherwise: () => 'skip' },
  one_done: { runsWhen: (u) => some(u, ['success', ...FAILED]), otherwise: () => 'skip' },
  none_failed: {
    runsWhen: (u) => every(u, TERMINAL) && !some(u, FAILED_OR_UPSTREAM_FAILED),
    otherwise: () => 'upstream_failed',
  },
  none_failed_min_one_success: {
    runsWhen: (u) => every(u, TERMINAL) && !some(u, FAILED_OR_UPSTREAM_FAILED) && some(u, ['success']),
    otherwise: (u) => (some(u, FAILED_OR_UPSTREAM_FAILED) ? 'upstream_failed' : 'skip'),
  },
  none_skipped: { runsWhen: (u) => every(u, TERMINAL) && !some(u, ['skipped']), otherwise: () => 'skip' },
  always: { runsWhen: () => true, otherwise: null },
};

/** Every way the unfinished upstreams could still end (each becomes any terminal state). */
function completions(u: Ups): Ups[] {
  let out: TaskState[][] = [[]];
  for (const s of u) {
    const choices = TERMINAL.includes(s) ? [s] : TERMINAL;
    out = out.flatMap((prefix) => choices.map((c) => [...prefix, c]));
  }
  return out;
}

function oracle(rule: TriggerRule, u: Ups): TriggerDecision['kind'] {
  if (u.length === 0) return 'run'; // SPEC: no upstream => runs as soon as the run starts
  const row = SPEC_TABLE[rule];
  if (row.runsWhen(u)) return 'run';
  // Settle as soon as no future can meet the rule (Airflow decides eagerly).
  if (completions(u).some(row.runsWhen)) return 'wait';
  assert.ok(row.otherwise, `${rule}: the table has no "otherwise" yet the rule can never run for ${u}`);
  return row.otherwise(u);
}

/** All ordered tuples of states of length n: covers every multiset, in every order. */
function tuples(n: number): TaskState[][] {
  let out: TaskState[][] = [[]];
  for (let i = 0; i < n; i++) out = out.flatMap((p) => ALL_STATES.map((s) => [...p, s]));
  return out;
}

const UPSTREAM_CASES: TaskState[][] = [1, 2, 3].flatMap(tuples);

describe('evaluateTriggerRule against the SPEC table', () => {
  it('knows exactly the rules of SPEC section 3', () => {
    assert.deepEqual([...TRIGGER_RULE_LIST].sort(), Object.keys(SPEC_TABLE).sort());
  });

  it('enumerates every multiset of 1..3 upstream states', () => {
    const multisets = new Set(UPSTREAM_CASES.map((u) => [...u].sort().join(',')));
    // C(9+k-1, k) for k = 1, 2, 3: 9 + 45 + 165.
    assert.equal(multisets.size, 219);
  });

  for (const rule of TRIGGER_RULE_LIST) {
    it(`${rule}: agrees with the oracle for every upstream combination and order`, () => {
      const mismatches: string[] = [];
      for (const u of UPSTREAM_CASES) {
        const got = evaluateTriggerRule(rule, u).kind;
        const want = oracle(rule, u);
        if (got !== want) mismatches.push(`[${u.join(', ')}]: got ${got}, want ${want}`);
      }
      assert.deepEqual(mismatches, []);
    });

    it(`${rule}: runs when there is no upstream`, () => {
      assert.equal(evaluateTriggerRule(rule, []).kind, 'run');
    });
  }
});

describe('evaluateTriggerRule invariants the scheduler relies on', () => {
  it('never waits once every upstream is terminal (no run can hang)', () => {
    for (const rule of TRIGGER_RULE_LIST) {
      for (const u of UPSTREAM_CASES.filter((x) => x.every((s) => TERMINAL.includes(s)))) {
        assert.notEqual(evaluateTriggerRule(rule, u).kind, 'wait', `${rule} [${u}]`);
      }
    }
  });

  it('never takes back a decision when an unfinished upstream finishes', () => {
    for (const rule of TRIGGER_RULE_LIST) {
      for (const u of UPSTREAM_CASES) {
        const before = evaluateTriggerRule(rule, u).kind;
        if (before === 'wait') continue;
        for (const later of completions(u)) {
          const after = evaluateTriggerRule(rule, later).kind;
          assert.notEqual(after, 'wait', `${rule} [${u}] -> [${later}]`);
          if (before === 'run') assert.equal(after, 'run', `${rule} [${u}] -> [${later}]`);
        }
      }
    }
  });
});

// Named cases: the edges of each row, readable on their own.
const NAMED: Array<[TriggerRule, TaskState[], TriggerDecision['kind'], string]> = [
  ['all_success', ['success', 'success'], 'run', 'every upstream succeeded'],
  ['all_success', ['success', 'running'], 'wait', 'one still running'],
  ['all_success', ['failed', 'running'], 'upstream_failed', 'a failure settles it without waiting'],
  ['all_success', ['upstream_failed', 'success'], 'upstream_failed', 'upstream_failed propagates'],
  ['all_success', ['skipped', 'running'], 'skip', 'a skip settles it without waiting'],
  ['all_success', ['skipped', 'failed'], 'upstream_failed', 'failure outranks skip'],
  ['all_success', ['cancelled', 'success'], 'upstream_failed', 'cancelled counts as failed'],
  ['all_success', ['up_for_retry'], 'wait', 'a retry may still succeed'],

  ['all_failed', ['failed', 'upstream_failed'], 'run', 'failed and upstream_failed both count'],
  ['all_failed', ['failed', 'cancelled'], 'run', 'cancelled counts as failed'],
  ['all_failed', ['failed', 'running'], 'wait', 'waits for the rest'],
  ['all_failed', ['success', 'running'], 'skip', 'one success settles it'],
  ['all_failed', ['failed', 'skipped'], 'skip', 'a skipped upstream is not a failure'],

  ['all_done', ['success', 'failed', 'skipped'], 'run', 'any mix of terminal states'],
  ['all_done', ['upstream_failed', 'cancelled'], 'run', 'upstream_failed and cancelled are done'],
  ['all_done', ['failed', 'up_for_retry'], 'wait', 'up_for_retry is not done'],
  ['all_done', ['queued'], 'wait', 'queued is not done'],

  ['all_skipped', ['skipped', 'skipped'], 'run', 'every upstream skipped'],
  ['all_skipped', ['skipped', 'pending'], 'wait', 'the pending one may still be skipped'],
  ['all_skipped', ['skipped', 'success'], 'skip', 'a success settles it'],
  ['all_skipped', ['upstream_failed', 'pending'], 'skip', 'a failure settles it'],

  ['one_success', ['success', 'running', 'pending'], 'run', 'does not wait for the rest'],
  ['one_success', ['failed', 'running'], 'wait', 'the running one may succeed'],
  ['one_success', ['failed', 'skipped'], 'upstream_failed', 'all done, none successful, one failed'],
  ['one_success', ['skipped', 'skipped'], 'skip', 'all done, none successful, none failed'],
  ['one_success', ['upstream_failed'], 'upstream_failed', 'upstream_failed counts as failed'],

  ['one_failed', ['failed', 'running'], 'run', 'does not wait for the rest'],
  ['one_failed', ['upstream_failed', 'pending'], 'run', 'upstream_failed counts'],
  ['one_failed', ['cancelled'], 'run', 'cancelled counts as failed'],
  ['one_failed', ['success', 'running'], 'wait', 'the running one may fail'],
  ['one_failed', ['success', 'skipped'], 'skip', 'all done, none failed'],

  ['one_done', ['success', 'pending'], 'run', 'a success is enough'],
  ['one_done', ['failed', 'pending'], 'run', 'a failure is enough'],
  ['one_done', ['skipped', 'running'], 'wait', 'the running one may end'],
  ['one_done', ['skipped', 'upstream_failed'], 'skip', 'upstream_failed is not success or failed'],

  ['none_failed', ['success', 'skipped'], 'run', 'skips are fine'],
  ['none_failed', ['skipped', 'skipped'], 'run', 'even all skipped'],
  ['none_failed', ['success', 'running'], 'wait', 'waits for every upstream'],
  ['none_failed', ['failed', 'running'], 'upstream_failed', 'a failure settles it'],
  ['none_failed', ['upstream_failed', 'success'], 'upstream_failed', 'upstream_failed counts'],

  ['none_failed_min_one_success', ['success', 'skipped'], 'run', 'one success, no failure'],
  ['none_failed_min_one_success', ['skipped', 'skipped'], 'skip', 'no success, no failure'],
  ['none_failed_min_one_success', ['skipped', 'running'], 'wait', 'the running one may succeed'],
  ['none_failed_min_one_success', ['success', 'failed'], 'upstream_failed', 'a failure outranks a success'],
  ['none_failed_min_one_success', ['cancelled', 'pending'], 'upstream_failed', 'cancelled counts as failed'],

  ['none_skipped', ['success', 'failed', 'upstream_failed'], 'run', 'failures are fine'],
  ['none_skipped', ['success', 'queued'], 'wait', 'waits for every upstream'],
  ['none_skipped', ['skipped', 'running'], 'skip', 'a skip settles it'],

  ['always', ['pending', 'running', 'failed'], 'run', 'whatever the upstream states'],
];

describe('evaluateTriggerRule named cases', () => {
  for (const [rule, ups, want, why] of NAMED) {
    it(`${rule} [${ups.join(', ')}] => ${want}: ${why}`, () => {
      assert.deepEqual(evaluateTriggerRule(rule, ups), { kind: want });
    });
  }
});

describe('runStateFromTasks', () => {
  it('agrees with SPEC for every combination of 1..3 task states', () => {
    for (const states of UPSTREAM_CASES) {
      const want = !states.every((s) => TERMINAL.includes(s))
        ? null
        : states.every((s) => s === 'success' || s === 'skipped') ? 'success' : 'failed';
      assert.equal(runStateFromTasks(states), want, `[${states}]`);
    }
  });

  it('names the common outcomes', () => {
    assert.equal(runStateFromTasks(['success', 'skipped']), 'success');
    assert.equal(runStateFromTasks(['skipped', 'skipped']), 'success');
    assert.equal(runStateFromTasks(['success', 'upstream_failed']), 'failed');
    assert.equal(runStateFromTasks(['success', 'cancelled']), 'failed', 'the caller decides on cancelled');
    assert.equal(runStateFromTasks(['failed', 'running']), null, 'unfinished even though one failed');
    assert.equal(runStateFromTasks(['success', 'up_for_retry']), null);
  });
});
