// The rollout history of a model (GET /api/v1/models/{name} `rollouts`, newest first), each rollout
// as a timeline: its steps in order with the canary's share, the step's window, the figures the
// analysis saw (requests, errors, error rate, p99) and the decision, then the outcome (promoted,
// rolled back, held, or still running). Values from the API are set as text only.
import { h } from '../dom.js'
import { fmtDuration, fmtTime, between } from '../format.js'
import { runTaskLink } from './model-parts.js'

const STATUS_TEXT = { running: 'running', promoted: 'promoted', rolled_back: 'rolled back', held: 'held' }

const num = (x, digits = 2) => (typeof x === 'number' && Number.isFinite(x) ? String(Number(x.toFixed(digits))) : '—')
const percent = (x) => (typeof x === 'number' && Number.isFinite(x) ? `${Number((x * 100).toFixed(2))} %` : '—')

function planText(plan) {
  if (!plan || !Array.isArray(plan.steps)) return ''
  const a = plan.analysis ?? {}
  return `steps ${plan.steps.join(' → ')} %, ${fmtDuration(plan.step_duration_ms)} each · at least ${a.min_requests} requests, ` +
    `error rate ≤ ${percent(a.max_error_rate)}, p99 ≤ ${num(a.max_p99_latency_ms)} ms · on failure: ${plan.on_failure}`
}

function stepItem(step, i, rollout) {
  const decided = step.ended_at !== null
  const state = !decided ? 'running' : step.passed ? 'passed' : 'failed'
  const limits = rollout.plan?.analysis ?? {}
  const over = (value, limit) => decided && typeof value === 'number' && typeof limit === 'number' && value > limit
  return h('li', { class: `rollout-step step-${state}`, dataset: { step: i + 1, percent: step.percent, decision: state } },
    h('div', { class: 'rollout-step-head' }, h('span', { class: 'rollout-percent' }, `${num(step.percent)} %`), h('span', { class: 'muted small' }, ` step ${i + 1}`)),
    h('div', { class: 'muted small rollout-window' }, fmtTime(step.started_at), decided ? ` · decided after ${fmtDuration(between(step.started_at, step.ended_at))}` : ' · running',
      step.waited_for_requests ? h('span', { class: 'waited' }, ` (waited for ${rollout.plan?.analysis?.min_requests ?? 'the minimum'} requests)`) : null),
    h('dl', { class: 'rollout-figures' },
      h('dt', null, 'requests'), h('dd', { class: 'fig-requests' }, decided ? String(step.requests) : '—'),
      h('dt', null, 'errors'), h('dd', { class: 'fig-errors' }, decided ? String(step.errors) : '—'),
      h('dt', null, 'error rate'), h('dd', { class: `fig-error-rate${over(step.error_rate, limits.max_error_rate) ? ' over' : ''}` }, decided ? percent(step.error_rate) : '—'),
      h('dt', null, 'p99'), h('dd', { class: `fig-p99${over(step.p99_ms, limits.max_p99_latency_ms) ? ' over' : ''}` }, decided && step.p99_ms !== null ? `${num(step.p99_ms)} ms` : '—')),
    h('div', { class: 'rollout-decision-text' }, state === 'passed' ? '✓ passed' : state === 'failed' ? `✗ failed: ${step.reason ?? ''}` : '… waiting for the window and min requests'))
}

function outcome(rollout) {
  const last = rollout.steps.at(-1)
  // The reason of a failed step is shown with the step; other reasons (a person moved the version, the task was cancelled) here.
  const why = rollout.reason && rollout.reason !== last?.reason ? ` (${rollout.reason})` : ''
  const text = {
    promoted: `v${rollout.version} is production${why}`,
    rolled_back: `all traffic back on production, v${rollout.version} a candidate again${why}`,
    held: `at ${last ? num(last.percent) : '?'} % for a person to decide${why}`,
    running: 'in progress',
  }[rollout.status] ?? rollout.status
  return h('li', { class: `rollout-outcome outcome-${rollout.status}` }, h('span', { class: `badge rollout-${rollout.status}` }, STATUS_TEXT[rollout.status] ?? rollout.status), ' ', text)
}

function rolloutItem(rollout) {
  const took = between(rollout.started_at, rollout.ended_at)
  return h('article', { class: 'rollout', dataset: { rollout: rollout.id, version: rollout.version, status: rollout.status } },
    h('header', { class: 'rollout-head' },
      h('strong', null, `v${rollout.version}`), ' ', h('span', { class: `badge rollout-${rollout.status}` }, STATUS_TEXT[rollout.status] ?? rollout.status),
      h('span', { class: 'muted small' }, ` started ${fmtTime(rollout.started_at)}`, rollout.ended_at ? `, took ${fmtDuration(took)}` : ''),
      rollout.run_id ? h('span', { class: 'small' }, ' · ', runTaskLink(rollout.run_id, rollout.task_id)) : null),
    h('div', { class: 'muted small rollout-plan' }, planText(rollout.plan)),
    h('ol', { class: 'rollout-timeline' }, rollout.steps.map((s, i) => stepItem(s, i, rollout)), outcome(rollout)))
}

export const rolloutsSection = {
  id: 'model-rollouts',
  title: (model) => `Rollouts (${model.rollouts.length})`,
  render(model) {
    if (!Array.isArray(model.rollouts) || model.rollouts.length === 0) return null
    return h('div', { id: 'model-rollouts-list' }, model.rollouts.map(rolloutItem))
  },
}
