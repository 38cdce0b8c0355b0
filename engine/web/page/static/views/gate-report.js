// The report of an `evaluate.gate` task on the run page: passed or not, and per metric its value,
// the threshold, the production baseline (with the improvement it had to beat) and the verdict with
// its reason. Read from the task's outputs, which a failed gate keeps:
//   {passed, metrics: {name: value}, baseline_metrics: {...} | null,
//    report: [{metric, value, threshold: {min} | {max} | {min, max} | null, baseline, min_improvement, passed, reason?}]}
import { h } from '../dom.js'
import { fmtValue } from './metrics.js'

/** Outputs shaped like a gate's (any operator may write them, e.g. a script scoring a model). */
export function isGateOutputs(outputs) {
  return outputs !== null && typeof outputs === 'object' && typeof outputs.passed === 'boolean' && (Array.isArray(outputs.report) || isObject(outputs.metrics))
}

export function gateReport(outputs) {
  const rows = reportRows(outputs)
  const passed = outputs.passed === true
  return h('section', { class: 'gate-report', id: 'gate-report', dataset: { passed: String(passed) } },
    h('h3', null, 'Gate'),
    h('p', { class: 'gate-verdict' },
      h('span', { class: `badge ${passed ? 'st-success' : 'st-failed'}`, id: 'gate-verdict' }, passed ? 'passed' : 'not met'),
      ' ', isObject(outputs.baseline_metrics) ? 'thresholds checked and compared with the production model' : 'thresholds checked'),
    rows.length === 0 ? h('p', { class: 'muted small' }, 'The gate reported no metric.') : h('div', { class: 'table-scroll' }, h('table', { class: 'list compact', id: 'gate-table' },
      h('thead', null, h('tr', null, ['Metric', 'Value', 'Threshold', 'Baseline', 'Result'].map((t) => h('th', null, t)))),
      h('tbody', null, rows.map((r) => h('tr', { class: 'gate-row', dataset: { metric: r.metric, passed: String(r.passed) } },
        h('td', { class: 'metric-name' }, r.metric),
        h('td', { class: 'num', title: typeof r.value === 'number' ? String(r.value) : null }, fmtValue(r.value)),
        h('td', { class: 'gate-threshold' }, thresholdText(r.threshold)),
        h('td', { class: 'gate-baseline' }, baselineText(r)),
        h('td', { class: 'gate-result' },
          h('span', { class: `badge ${r.passed === true ? 'st-success' : r.passed === false ? 'st-failed' : 'st-queued'}` }, r.passed === true ? 'pass' : r.passed === false ? 'fail' : '—'),
          r.reason ? h('span', { class: 'gate-reason small' }, ` ${r.reason}`) : null)))))))
}

/** The report's rows; without a report (an older gate), one row per metric with no verdict of its own. */
function reportRows(outputs) {
  if (Array.isArray(outputs.report)) {
    return outputs.report.filter(isObject).map((r) => ({
      metric: typeof r.metric === 'string' ? r.metric : fmtValue(r.metric),
      value: r.value,
      threshold: r.threshold,
      baseline: r.baseline,
      minImprovement: r.min_improvement,
      passed: typeof r.passed === 'boolean' ? r.passed : null,
      reason: typeof r.reason === 'string' ? r.reason : null,
    }))
  }
  const baseline = isObject(outputs.baseline_metrics) ? outputs.baseline_metrics : {}
  return Object.entries(outputs.metrics).map(([metric, value]) => ({ metric, value, threshold: null, baseline: baseline[metric], minImprovement: null, passed: null, reason: null }))
}

function thresholdText(threshold) {
  if (!isObject(threshold)) return h('span', { class: 'muted' }, 'none')
  const parts = []
  if (threshold.min !== undefined && threshold.min !== null) parts.push(`≥ ${fmtValue(threshold.min)}`)
  if (threshold.max !== undefined && threshold.max !== null) parts.push(`≤ ${fmtValue(threshold.max)}`)
  return parts.length ? parts.join(' and ') : h('span', { class: 'muted' }, 'none')
}

function baselineText(r) {
  if (r.baseline === null || r.baseline === undefined) return h('span', { class: 'muted' }, '—')
  const needs = typeof r.minImprovement === 'number' ? h('span', { class: 'muted small' }, ` (to beat by ${fmtValue(r.minImprovement)})`) : null
  return [fmtValue(r.baseline), needs]
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
