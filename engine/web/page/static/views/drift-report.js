// The report of an `evaluate.drift` task on the run page: per feature its statistics and verdict, and a
// histogram of the reference (the model's training set) overlaid with the current data. Read from the
// task's outputs: {drifted, drifted_features, features: {name: {kind, drifted, psi, ks, chi2, p_value,
// histogram: {edges | categories, reference: [share], current: [share]}}}, reason, reference, current, thresholds}.
// `current` is {dataset, version} or the online store's rows of a window {online, definition_version,
// window_start, window_end, rows}; `reference` is null when the model had no version to compare with
// (if_no_reference: drifted), and the page then shows the reason instead of an empty table.
import { h } from '../dom.js'
import { fmtValue } from './metrics.js'

export function isDriftOutputs(outputs) {
  return outputs !== null && typeof outputs === 'object' && typeof outputs.drifted === 'boolean' && isObject(outputs.features)
}

export function driftReport(outputs) {
  const features = Object.entries(outputs.features).filter(([, f]) => isObject(f))
  const reason = typeof outputs.reason === 'string' ? outputs.reason : null
  const hasReference = isObject(outputs.reference)
  return h('section', { class: 'drift-report', id: 'drift-report', dataset: { drifted: String(outputs.drifted) } },
    h('h3', null, 'Drift'),
    h('p', { class: 'drift-verdict' },
      h('span', { class: `badge ${outputs.drifted ? 'st-failed' : 'st-success'}`, id: 'drift-verdict' }, outputs.drifted ? 'drifted' : 'no drift'),
      ' ', hasReference ? `${source(outputs.current)} against ${source(outputs.reference)}` : 'no reference to compare with',
      hasReference && outputs.reference.model ? ` (training set of ${fmtValue(outputs.reference.model)} version ${fmtValue(outputs.reference.model_version)})` : ''),
    reason !== null ? h('p', { class: 'drift-reason', id: 'drift-reason' }, reason) : null,
    !hasReference && features.length === 0 ? null : [
      h('div', { class: 'table-scroll' }, h('table', { class: 'list compact', id: 'drift-table' },
        h('thead', null, h('tr', null, ['Feature', 'Kind', 'Statistics', 'Nulls (ref / cur)', 'Result'].map((t) => h('th', null, t)))),
        h('tbody', null, features.map(([name, f]) => h('tr', { class: 'drift-row', dataset: { feature: name, drifted: String(f.drifted === true) } },
          h('td', { class: 'metric-name' }, name),
          h('td', null, f.kind === 'categorical' ? 'category' : 'number'),
          h('td', { class: 'drift-figures' }, f.kind === 'categorical'
            ? `chi² ${fmtValue(f.chi2)} (${fmtValue(f.dof)} dof), p ${fmtValue(f.p_value)}`
            : `PSI ${fmtValue(f.psi)}, KS ${fmtValue(f.ks)} (p ${fmtValue(f.ks_p_value)})`),
          h('td', { class: 'num' }, Array.isArray(f.null_fraction) ? f.null_fraction.map((x) => `${fmtValue(typeof x === 'number' ? Math.round(x * 1000) / 10 : x)} %`).join(' / ') : '—'),
          h('td', null, h('span', { class: `badge ${f.drifted ? 'st-failed' : 'st-success'}` }, f.drifted ? 'drift' : 'ok'))))))),
      features.map(([name, f]) => histogram(name, f)),
    ])
}

/** A side as one line: name@version, or the online rows of a view in a window. */
function source(side) {
  if (!isObject(side)) return '—'
  if (side.online !== undefined) {
    return `online ${fmtValue(side.online)} (definition ${fmtValue(side.definition_version)}, ${fmtValue(side.rows)} rows in ${fmtValue(side.window_start)} – ${fmtValue(side.window_end)})`
  }
  return `${fmtValue(side.dataset)}@${fmtValue(side.version)}`
}

/** Bars of both samples' shares per bin, the current drawn over the reference. */
function histogram(name, feature) {
  const hist = isObject(feature.histogram) ? feature.histogram : {}
  const reference = Array.isArray(hist.reference) ? hist.reference : []
  const current = Array.isArray(hist.current) ? hist.current : []
  const labels = feature.kind === 'categorical' ? (Array.isArray(hist.categories) ? hist.categories.map((c) => fmtValue(c)) : []) : binLabels(Array.isArray(hist.edges) ? hist.edges : [], reference.length)
  const top = Math.max(1e-9, ...reference.filter(isNumber), ...current.filter(isNumber))
  const pct = (x) => `${Math.round(((isNumber(x) ? x : 0) / top) * 1000) / 10}%`
  return h('figure', { class: 'drift-histogram', dataset: { feature: name } },
    h('figcaption', null, name, ' ', h('span', { class: 'drift-key ref' }, 'reference'), ' ', h('span', { class: 'drift-key cur' }, 'current')),
    h('div', { class: 'bars' }, labels.map((label, i) => h('div', { class: 'bin', title: `${label}: reference ${share(reference[i])}, current ${share(current[i])}` },
      h('div', { class: 'bar ref', style: { height: pct(reference[i]) } }),
      h('div', { class: 'bar cur', style: { height: pct(current[i]) } }),
      h('div', { class: 'bin-label small' }, label)))))
}

function binLabels(edges, count) {
  const labels = []
  for (let i = 0; i < count; i++) {
    const lo = i === 0 ? null : edges[i - 1]
    const hi = i < edges.length ? edges[i] : null
    labels.push(lo === null ? `< ${fmtValue(hi)}` : hi === null ? `≥ ${fmtValue(lo)}` : `${fmtValue(lo)}–${fmtValue(hi)}`)
  }
  return labels
}

const share = (x) => (isNumber(x) ? `${Math.round(x * 1000) / 10} %` : '—')
const isNumber = (x) => typeof x === 'number' && Number.isFinite(x)

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
