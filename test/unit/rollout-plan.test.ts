/**
 * The rollout decision (engine/models/rollout-plan.ts) for every recorded state: begin, steps in
 * order, waiting for the window and for min_requests, the analysis limits, promotion, failure,
 * resuming a held rollout, and the refusals (another canary, another rollout, a moved version).
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { POLL_MS, decideRollout, judgeStep } from '../../engine/models/rollout-plan.ts'
import type { RecordedState, RolloutPlan, ServingFigures } from '../../engine/models/rollout-plan.ts'
import type { RolloutStepJson } from '../../engine/store/rollouts.ts'

const plan: RolloutPlan = { steps: [10, 50, 100], stepDurationMs: 2000, analysis: { minRequests: 20, maxErrorRate: 0.01, maxP99LatencyMs: 50 }, onFailure: 'rollback' }
const t0 = new Date('2026-01-01T00:00:00Z')
const at = (ms: number): Date => new Date(t0.getTime() + ms)
const good: ServingFigures = { requests: 100, errors: 0, errorRate: 0, p99Ms: 3 }

function step(percent: number, startMs: number, end?: { passed: boolean; reason?: string }): RolloutStepJson {
  return {
    percent,
    started_at: at(startMs).toISOString(),
    ended_at: end ? at(startMs + 2100).toISOString() : null,
    requests: end ? 100 : 0,
    errors: 0,
    error_rate: end ? 0 : null,
    p99_ms: end ? 3 : null,
    passed: end ? end.passed : null,
    reason: end?.reason ?? null,
  }
}

function state(stage: RecordedState['version'] extends infer V ? V extends { stage: infer S } ? S : never : never, rollout?: RecordedState['rollout'], otherCanary: number | null = null): RecordedState {
  return { version: { stage, trafficShare: 0 }, otherCanary, rollout }
}

test('a fresh rollout begins, then runs its steps in order and promotes after the last', () => {
  assert.deepEqual(decideRollout(plan, 3, state('candidate'), t0), { kind: 'begin' })
  assert.deepEqual(decideRollout(plan, 3, state('archived'), t0), { kind: 'begin' })
  assert.deepEqual(decideRollout(plan, 3, state('canary', { version: 3, status: 'running', steps: [] }), t0), { kind: 'start_step', index: 0, percent: 10 })
  const first = [step(10, 0, { passed: true })]
  assert.deepEqual(decideRollout(plan, 3, state('canary', { version: 3, status: 'running', steps: first }), at(2200)), { kind: 'start_step', index: 1, percent: 50 })
  const all = [step(10, 0, { passed: true }), step(50, 2200, { passed: true }), step(100, 4400, { passed: true })]
  assert.deepEqual(decideRollout(plan, 3, state('canary', { version: 3, status: 'running', steps: all }), at(7000)), { kind: 'promote' })
})

test('a step waits for its window, then asks for figures, then judges them', () => {
  const open = state('canary', { version: 3, status: 'running', steps: [step(10, 0)] })
  assert.deepEqual(decideRollout(plan, 3, open, at(500)), { kind: 'wait', ms: 1500, why: 'window' })
  assert.deepEqual(decideRollout(plan, 3, open, at(1999)), { kind: 'wait', ms: 1, why: 'window' })
  // Figures given before the window is over are not used.
  assert.deepEqual(decideRollout(plan, 3, open, at(1000), good), { kind: 'wait', ms: 1000, why: 'window' })
  assert.deepEqual(decideRollout(plan, 3, open, at(2000)), { kind: 'measure', index: 0, since: t0 })
  assert.deepEqual(decideRollout(plan, 3, open, at(2000), good), { kind: 'pass_step', index: 0, figures: good })
  // Too few requests: wait (past step_duration) and poll again.
  assert.deepEqual(decideRollout(plan, 3, open, at(2000), { requests: 19, errors: 0, errorRate: 0, p99Ms: 1 }), { kind: 'wait', ms: POLL_MS, why: 'min_requests' })
})

test('the analysis limits: error rate and p99 over their limits fail, at the limit passes', () => {
  const a = plan.analysis
  assert.equal(judgeStep(a, 0, { requests: 100, errors: 1, errorRate: 0.01, p99Ms: 50 }).kind, 'pass_step')
  const errors = judgeStep(a, 1, { requests: 100, errors: 2, errorRate: 0.02, p99Ms: 1 })
  assert.equal(errors.kind, 'fail_step')
  assert.match(errors.kind === 'fail_step' ? errors.reason : '', /error rate 0.02 over the limit 0.01 \(2 of 100 requests failed\)/)
  const slow = judgeStep(a, 1, { requests: 100, errors: 0, errorRate: 0, p99Ms: 50.5 })
  assert.match(slow.kind === 'fail_step' ? slow.reason : '', /p99 latency 50.5 ms over the limit 50 ms/)
  // An error rate not given is computed; no requests at all with min_requests 0 passes.
  assert.equal(judgeStep(a, 0, { requests: 100, errors: 5, errorRate: null, p99Ms: 1 }).kind, 'fail_step')
  assert.equal(judgeStep({ ...a, minRequests: 0 }, 0, { requests: 0, errors: 0, errorRate: null, p99Ms: null }).kind, 'pass_step')
  // Every request failing: the error rate decides, whatever the latency.
  assert.equal(judgeStep(a, 0, { requests: 40, errors: 40, errorRate: 1, p99Ms: null }).kind, 'fail_step')
})

test('resuming: a held rollout retries its failed step; a version already in production is done', () => {
  const held = state('canary', { version: 3, status: 'held', steps: [step(10, 0, { passed: true }), step(50, 2200, { passed: false, reason: 'x' })] })
  assert.deepEqual(decideRollout(plan, 3, held, at(9000)), { kind: 'start_step', index: 1, percent: 50 })
  assert.deepEqual(decideRollout(plan, 3, state('production'), t0), { kind: 'done' })
})

test('refusals: no such version, another canary, another rollout, the version moved by a person', () => {
  assert.equal(decideRollout(plan, 9, { version: undefined, otherCanary: null, rollout: undefined }, t0).kind, 'refuse')
  const other = decideRollout(plan, 3, state('candidate', undefined, 2), t0)
  assert.match(other.kind === 'refuse' ? other.message : '', /version 2 of the model is already the canary/)
  const otherRollout = decideRollout(plan, 3, state('candidate', { version: 2, status: 'held', steps: [] }, 2), t0)
  assert.match(otherRollout.kind === 'refuse' ? otherRollout.message : '', /version 2 of the model is being rolled out \(held\)/)
  const moved = decideRollout(plan, 3, state('candidate', { version: 3, status: 'running', steps: [step(10, 0)] }), at(5000))
  assert.match(moved.kind === 'refuse' ? moved.message : '', /was moved to candidate while its rollout was running/)
})
