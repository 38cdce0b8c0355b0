/**
 * The decision of `evaluate.gate` (SPEC section 4), a pure function of the metrics of the model, those
 * of the baseline (the production version scored on the same rows, or null), and the params:
 *
 *   thresholds        { metric: { min?, max? } }  bounds the value must meet, inclusive
 *   compare_to        with a baseline, the metrics named in `min_improvement` must improve on it by at
 *                     least that much in their better direction (higher for auc, accuracy, f1, precision,
 *                     recall; lower for log_loss, rmse, mae); without `min_improvement`, every metric of
 *                     the gate must be at least as good as the baseline's. No baseline (the model has no
 *                     production version yet): nothing to beat, the comparison passes with baseline null.
 *
 * Comparisons allow 1e-9 of floating-point slack (0.5 - 0.45 is 0.04999999999999999 in doubles, and
 * must meet a required improvement of 0.05). A metric that could not be computed (null) fails every
 * check it is part of. The report has one row per
 * metric, in the order of `metrics` and then any other metric the thresholds or improvements name.
 */
import { lowerIsBetter } from './metrics.ts'
import type { MetricName, MetricValue } from './metrics.ts'

/** Slack for floating-point rounding in every comparison. */
const SLACK = 1e-9

export interface GateRule {
  metrics: readonly MetricName[]
  thresholds?: Partial<Record<MetricName, { min?: number; max?: number }>>
  compareTo?: 'production'
  minImprovement?: Partial<Record<MetricName, number>>
}

export interface GateRow {
  metric: MetricName
  value: number | null
  threshold: { min?: number; max?: number } | null
  baseline: number | null
  min_improvement: number | null
  passed: boolean
  reason?: string
}

export interface GateDecision {
  passed: boolean
  report: GateRow[]
}

/** Every metric the gate must compute: `metrics`, then those only thresholds or improvements name. */
export function gateMetrics(rule: GateRule): MetricName[] {
  const all = [...rule.metrics]
  for (const m of [...Object.keys(rule.thresholds ?? {}), ...Object.keys(rule.minImprovement ?? {})] as MetricName[]) if (!all.includes(m)) all.push(m)
  return all
}

/** Numbers in messages: up to 6 significant digits, as people read them. */
export function formatNumber(value: number | null): string {
  if (value === null) return 'null'
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)))
}

export function decideGate(rule: GateRule, metrics: Record<string, MetricValue>, baseline: Record<string, MetricValue> | null): GateDecision {
  const report: GateRow[] = []
  for (const metric of gateMetrics(rule)) {
    const measured = metrics[metric] ?? { value: null, reason: 'not computed' }
    const threshold = rule.thresholds?.[metric] ?? null
    const base = baseline ? (baseline[metric] ?? { value: null, reason: 'not computed' }) : null
    const compared = rule.compareTo !== undefined && baseline !== null
    const minImprovement = !compared ? null : rule.minImprovement ? (rule.minImprovement[metric] ?? null) : 0
    const reasons: string[] = []
    const value = measured.value
    if (value === null && (threshold !== null || minImprovement !== null)) reasons.push(`cannot be computed: ${measured.reason}`)
    if (value !== null && threshold !== null) {
      if (threshold.min !== undefined && value < threshold.min - SLACK) reasons.push(`${formatNumber(value)} < min ${formatNumber(threshold.min)}`)
      if (threshold.max !== undefined && value > threshold.max + SLACK) reasons.push(`${formatNumber(value)} > max ${formatNumber(threshold.max)}`)
    }
    if (value !== null && minImprovement !== null && base !== null) {
      if (base.value === null) reasons.push(`the baseline's value cannot be computed: ${base.reason}`)
      else {
        const improvement = lowerIsBetter(metric) ? base.value - value : value - base.value
        if (improvement < minImprovement - SLACK) {
          const needs = minImprovement > 0 ? `, and must improve on it by at least ${formatNumber(minImprovement)}` : ''
          reasons.push(improvement < 0
            ? `worse than the baseline's ${formatNumber(base.value)} by ${formatNumber(-improvement)}${needs}`
            : `improves on the baseline's ${formatNumber(base.value)} by ${formatNumber(improvement)}, less than the required ${formatNumber(minImprovement)}`)
        }
      }
    }
    report.push({
      metric,
      value,
      threshold: threshold === null ? null : { ...threshold },
      baseline: base?.value ?? null,
      min_improvement: minImprovement,
      passed: reasons.length === 0,
      ...(reasons.length > 0 ? { reason: reasons.join('; ') } : value === null ? { reason: measured.reason } : {}),
    })
  }
  return { passed: report.every((r) => r.passed), report }
}

/** The report as a text table for the task log. */
export function gateTable(decision: GateDecision): string[] {
  const header = ['METRIC', 'VALUE', 'THRESHOLD', 'BASELINE', 'MIN IMPROVEMENT', 'RESULT']
  const rows = decision.report.map((r) => [
    r.metric,
    formatNumber(r.value),
    r.threshold === null ? '-' : [r.threshold.min !== undefined ? `>= ${formatNumber(r.threshold.min)}` : '', r.threshold.max !== undefined ? `<= ${formatNumber(r.threshold.max)}` : ''].filter(Boolean).join(', '),
    r.baseline === null ? '-' : formatNumber(r.baseline),
    r.min_improvement === null ? '-' : formatNumber(r.min_improvement),
    r.passed ? (r.reason ? `ok (${r.reason})` : 'ok') : `FAILED: ${r.reason}`,
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')
  return [line(header), ...rows.map(line), decision.passed ? 'gate passed' : 'gate NOT met']
}
