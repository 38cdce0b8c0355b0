// Metric values as people read them (training metrics, gate reports, model versions). Names and
// values come from task outputs and the registry: they are only ever set as text.
import { h } from '../dom.js'

/** A number to at most 4 decimals (0.8123, 12.5, 1200); anything else as short JSON text. */
export function fmtValue(value) {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return String(value)
    if (Number.isInteger(value)) return String(value)
    const abs = Math.abs(value)
    if (abs !== 0 && (abs < 1e-4 || abs >= 1e9)) return value.toExponential(3)
    return String(Number(value.toFixed(4)))
  }
  if (value === null || value === undefined) return '—'
  if (typeof value === 'string') return value
  const text = JSON.stringify(value)
  return text.length > 80 ? `${text.slice(0, 79)}…` : text
}

/** name -> value as a two-column table. */
export function metricsTable(metrics, id) {
  return h('table', { class: 'list compact metrics', id },
    h('thead', null, h('tr', null, h('th', null, 'Metric'), h('th', null, 'Value'))),
    h('tbody', null, Object.entries(metrics).map(([name, value]) => h('tr', { dataset: { metric: name } },
      h('td', { class: 'metric-name' }, name), h('td', { class: 'num', title: typeof value === 'number' ? String(value) : null }, fmtValue(value))))))
}

/** name=value pairs on one line, for tables of versions. */
export function metricsInline(metrics) {
  const entries = Object.entries(metrics ?? {}).filter(([, v]) => typeof v === 'number' || typeof v === 'string')
  if (entries.length === 0) return h('span', { class: 'muted' }, '—')
  return h('span', { class: 'metrics-inline' }, entries.map(([name, value]) => h('span', { class: 'metric', dataset: { metric: name } }, h('span', { class: 'muted' }, `${name} `), fmtValue(value))))
}
