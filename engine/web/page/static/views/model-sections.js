// The sections of one model's page, in order. Each is {id, title, render(model, ctx)} where `model`
// is GET /api/v1/models/{name} and ctx is {version: the chosen version, navigate}; render returns
// the section's content, or null to leave the section out. A section for another part of the
// registry (such as the history of rollouts) is one more entry in MODEL_SECTIONS.
import { h } from '../dom.js'
import { fmtTime } from '../format.js'
import { metricsInline, metricsTable } from './metrics.js'
import { actorText, lineageList, shareText, stageBadge } from './model-parts.js'
import { rolloutsSection } from './model-rollouts.js'

const versionsSection = {
  id: 'model-versions',
  title: () => 'Versions',
  render(model, { version: shown }) {
    return h('div', { class: 'table-scroll' }, h('table', { class: 'list', id: 'model-versions-table' },
      h('thead', null, h('tr', null, ['Version', 'Stage', 'Traffic', 'Metrics', 'Created', 'Lineage'].map((t) => h('th', null, t)))),
      h('tbody', null, model.versions.map((v) => h('tr', { class: v.version === shown.version ? 'selected-row' : '', dataset: { version: v.version, stage: v.stage } },
        h('td', null, h('a', { href: `#/models/${encodeURIComponent(model.name)}?version=${v.version}` }, `v${v.version}`)),
        h('td', null, stageBadge(v.stage)),
        h('td', { class: 'num traffic' }, shareText(v.traffic_share)),
        h('td', null, metricsInline(v.metrics)),
        h('td', null, fmtTime(v.created_at)),
        h('td', { class: 'lineage' }, lineageList(v.lineage, { compact: true })))))))
  },
}

const versionSection = {
  id: 'model-version',
  title: (model, { version: v }) => `Version ${v.version}`,
  render(model, { version: v }) {
    const metrics = Object.keys(v.metrics ?? {}).length ? metricsTable(v.metrics, 'model-version-metrics') : h('p', { class: 'muted small' }, 'No metrics were recorded.')
    return h('div', { class: 'columns wrap' },
      h('div', { class: 'grow' },
        h('dl', { class: 'facts model-facts', id: 'model-version-facts' },
          h('dt', null, 'Reference'), h('dd', null, h('code', null, v.uri)),
          h('dt', null, 'Stage'), h('dd', null, stageBadge(v.stage)),
          h('dt', null, 'Traffic'), h('dd', null, shareText(v.traffic_share)),
          h('dt', null, 'Kind'), h('dd', null, v.task_kind ?? '—'),
          h('dt', null, 'Features'), h('dd', { id: 'model-version-features' }, v.features.length ? v.features.join(', ') : '—'),
          h('dt', null, 'SHA-256'), h('dd', null, h('code', { class: 'small' }, v.sha256)),
          h('dt', null, 'Created'), h('dd', null, fmtTime(v.created_at))),
        h('h3', null, 'Lineage'), h('div', { id: 'model-version-lineage' }, lineageList(v.lineage))),
      h('div', { class: 'grow' }, h('h3', null, 'Metrics'), metrics))
  },
}

const auditSection = {
  id: 'model-audit',
  title: () => 'Stage and traffic changes',
  render(model) {
    if (model.audit.length === 0) return h('p', { class: 'muted' }, 'No change recorded.')
    // Newest first; the API lists them in the order they happened.
    const entries = model.audit.map((a, i) => ({ ...a, i })).reverse()
    return h('div', { class: 'table-scroll' }, h('table', { class: 'list compact', id: 'model-audit-table' },
      h('thead', null, h('tr', null, ['When', 'Version', 'Change', 'By'].map((t) => h('th', null, t)))),
      h('tbody', null, entries.map((a) => h('tr', { class: 'audit-row', dataset: { version: a.version, from: a.from_stage ?? '', to: a.to_stage } },
        h('td', null, fmtTime(a.at)),
        h('td', null, `v${a.version}`),
        h('td', null, a.from_stage ? [stageBadge(a.from_stage), ' → '] : h('span', { class: 'muted' }, 'registered as '), stageBadge(a.to_stage),
          typeof a.traffic_share === 'number' && (a.to_stage === 'canary' || a.to_stage === 'production') ? h('span', { class: 'muted small' }, ` (traffic ${Math.round(a.traffic_share * 100)} %)`) : null),
        h('td', { class: 'audit-actor' }, actorText(a.actor)))))))
  },
}

export const MODEL_SECTIONS = [versionsSection, versionSection, rolloutsSection, auditSection]
