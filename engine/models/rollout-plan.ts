/**
 * The decision of a canary rollout (SPEC section 7, `serve.rollout`) as a pure function: given the
 * model's recorded state (the version's stage and share, another canary if any, the unfinished
 * rollout) and, when a step's window has ended, the canary's figures in that window, what to do
 * next. The operator (operators/serve-rollout.ts) applies the action and asks again; everything it
 * needs to resume after a crash, a retry or a re-run is in the recorded state.
 *
 *   no rollout, version not canary    begin         (rollout row, version -> canary at share 0)
 *   running, no step yet              start_step 0  (share = steps[0] %)
 *   step open, window not over        wait          (until step start + step_duration)
 *   window over, no figures given     measure       (read the canary's figures since step start)
 *   fewer than min_requests           wait          (poll again)
 *   error rate or p99 over a limit    fail_step     (rollback: traffic to production, version -> candidate;
 *                                                    hold: the split stays, rollout held)
 *   within the limits                 pass_step     (then start_step i+1, or promote after the last)
 *   held (a step failed earlier)      start_step i  (a re-run retries the failed step with a new window)
 *   version already production        done          (nothing to do: same outputs as a promotion)
 */
import type { ModelStage } from '../store/models.ts'
import type { RolloutStatus, RolloutStepJson } from '../store/rollouts.ts'

export interface Analysis {
  minRequests: number
  maxErrorRate: number
  maxP99LatencyMs: number
}

export interface RolloutPlan {
  /** Percent of traffic on the canary at each step, e.g. [10, 50, 100]. */
  steps: readonly number[]
  stepDurationMs: number
  analysis: Analysis
  onFailure: 'rollback' | 'hold'
}

/** The canary's figures in one window (summed over every server process). */
export interface ServingFigures {
  requests: number
  errors: number
  /** errors / requests; null without requests. */
  errorRate: number | null
  /** null without requests (or without latency samples). */
  p99Ms: number | null
}

export interface RecordedState {
  /** The version being rolled out; undefined when the model has no such version. */
  version: { stage: ModelStage; trafficShare: number } | undefined
  /** Another version of the model in `canary`, if any. */
  otherCanary: number | null
  /** The model's unfinished rollout, if any (it may be of another version). */
  rollout: { version: number; status: RolloutStatus; steps: readonly RolloutStepJson[] } | undefined
}

export type RolloutAction =
  | { kind: 'refuse'; message: string }
  | { kind: 'done' }
  | { kind: 'begin' }
  | { kind: 'start_step'; index: number; percent: number }
  | { kind: 'wait'; ms: number; why: 'window' | 'min_requests' }
  | { kind: 'measure'; index: number; since: Date }
  | { kind: 'pass_step'; index: number; figures: ServingFigures }
  | { kind: 'fail_step'; index: number; figures: ServingFigures; reason: string }
  | { kind: 'promote' }

/** How often figures are read again while a step waits for min_requests (the decision comes within this after they arrive). */
export const POLL_MS = 200

export function decideRollout(plan: RolloutPlan, versionNumber: number, state: RecordedState, now: Date, figures?: ServingFigures): RolloutAction {
  const { version, rollout } = state
  if (!version) return { kind: 'refuse', message: `the model has no version ${versionNumber}` }
  if (rollout && rollout.version !== versionNumber) {
    return { kind: 'refuse', message: `version ${rollout.version} of the model is being rolled out (${rollout.status}); a model has one canary at a time: finish or roll back that rollout first` }
  }
  if (!rollout) {
    if (version.stage === 'production') return { kind: 'done' }
    if (state.otherCanary !== null) {
      return { kind: 'refuse', message: `version ${state.otherCanary} of the model is already the canary; a model has one canary at a time (move it with \`cairn models stage\` first)` }
    }
    return { kind: 'begin' }
  }
  if (version.stage !== 'canary') {
    return { kind: 'refuse', message: `version ${versionNumber} was moved to ${version.stage} while its rollout was ${rollout.status}; the rollout stops` }
  }
  const steps = rollout.steps
  const last = steps.at(-1)
  if (rollout.status === 'held') {
    const index = Math.max(0, steps.length - 1)
    return { kind: 'start_step', index, percent: plan.steps[Math.min(index, plan.steps.length - 1)]! }
  }
  if (!last) return { kind: 'start_step', index: 0, percent: plan.steps[0]! }
  const index = steps.length - 1
  if (last.ended_at !== null) {
    if (last.passed === false) return { kind: 'fail_step', index, figures: figuresOf(last), reason: last.reason ?? 'the step failed' }
    return index + 1 < plan.steps.length ? { kind: 'start_step', index: index + 1, percent: plan.steps[index + 1]! } : { kind: 'promote' }
  }
  const started = new Date(last.started_at)
  const windowEnd = started.getTime() + plan.stepDurationMs
  if (now.getTime() < windowEnd) return { kind: 'wait', ms: windowEnd - now.getTime(), why: 'window' }
  if (!figures) return { kind: 'measure', index, since: started }
  return judgeStep(plan.analysis, index, figures)
}

/** The analysis of one step's window once step_duration is over. */
export function judgeStep(analysis: Analysis, index: number, figures: ServingFigures): RolloutAction {
  if (figures.requests < analysis.minRequests) return { kind: 'wait', ms: POLL_MS, why: 'min_requests' }
  const errorRate = figures.errorRate ?? (figures.requests > 0 ? figures.errors / figures.requests : null)
  if (errorRate !== null && errorRate > analysis.maxErrorRate) {
    return { kind: 'fail_step', index, figures, reason: `error rate ${round(errorRate)} over the limit ${analysis.maxErrorRate} (${figures.errors} of ${figures.requests} requests failed)` }
  }
  if (figures.p99Ms !== null && figures.p99Ms > analysis.maxP99LatencyMs) {
    return { kind: 'fail_step', index, figures, reason: `p99 latency ${round(figures.p99Ms)} ms over the limit ${analysis.maxP99LatencyMs} ms` }
  }
  return { kind: 'pass_step', index, figures }
}

function figuresOf(step: RolloutStepJson): ServingFigures {
  return { requests: step.requests, errors: step.errors, errorRate: step.error_rate, p99Ms: step.p99_ms }
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000
}
