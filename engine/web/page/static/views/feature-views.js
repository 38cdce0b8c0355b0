// Feature views: the list (definition version, online rows, materialized intervals), and one view: its
// definition (features, entity, source, ttl; the file as written), the materialized intervals on a
// timeline with the gaps between them, and how many entities the online store holds.
import { api, enc } from '../api.js'
import { h, replace } from '../dom.js'
import { fmtDuration, fmtTime, relative } from '../format.js'
import { intervalTimeline } from '../timeline.js'
import { prunedRun } from './common.js'

export function featureViewListView({ container }) {
  const table = h('div', { id: 'feature-view-table' })
  replace(container,
    h('div', { class: 'page-head' }, h('h1', null, 'Feature views'),
      h('div', { class: 'meta' }, h('span', null, 'Features computed for each data interval by ', h('code', null, 'features.materialize'), ', kept offline for training sets and online for lookups.'))),
    table)
  let key = ''

  async function refresh() {
    const { feature_views: views } = await api('/feature_views')
    const k = JSON.stringify(views)
    if (k === key) return
    key = k
    if (views.length === 0) {
      replace(table, h('p', { class: 'muted', id: 'no-feature-views' }, 'No feature views yet: add a feature view file to the DAG folder (by convention dags/features/).'))
      return
    }
    replace(table, h('div', { class: 'table-scroll' }, h('table', { class: 'list' },
      h('thead', null, h('tr', null, h('th', null, 'Feature view'), h('th', null, 'Definition'), h('th', null, 'Intervals'), h('th', null, 'Materialized up to'), h('th', null, 'Online rows'))),
      h('tbody', null, views.map((v) => h('tr', { class: v.removed ? 'paused' : '', dataset: { view: v.name } },
        h('td', null, h('a', { class: 'dag-link', href: `#/features/${enc(v.name)}` }, v.name), v.removed ? h('span', { class: 'pill pill-paused' }, 'removed') : null,
          v.description ? h('div', { class: 'muted small' }, v.description) : null),
        h('td', null, `v${v.definition_version}`),
        h('td', { class: 'num' }, String(v.materialized_intervals)),
        h('td', { title: fmtTime(v.last_interval_end) }, v.last_interval_end ? `${fmtTime(v.last_interval_end)} (${relative(v.last_interval_end)})` : '—'),
        h('td', { class: 'num' }, v.online_rows.toLocaleString('en-US'))))))))
  }

  return { refresh }
}

export function featureView({ container, name }) {
  const head = h('div', { class: 'page-head' })
  const definitionBox = h('div', { id: 'feature-definition' })
  const sourceBox = h('div', { id: 'feature-source' })
  const timelineBox = h('div', { id: 'feature-timeline' })
  const intervalsBox = h('div', { id: 'feature-intervals' })
  replace(container,
    h('nav', { class: 'crumbs' }, h('a', { href: '#/features' }, 'Feature views'), ' / ', name),
    head,
    h('section', { class: 'card' }, h('h2', null, 'Materialized intervals'), timelineBox, intervalsBox),
    h('div', { class: 'columns' },
      h('section', { class: 'card grow' }, h('h2', null, 'Definition'), definitionBox),
      h('section', { class: 'card side wide' }, h('h2', null, 'File'), sourceBox)))
  let key = ''
  let lastWidth = 0

  async function refresh() {
    const view = await api(`/feature_views/${enc(name)}`)
    const width = timelineBox.clientWidth
    const k = JSON.stringify(view)
    if (k === key && Math.abs(width - lastWidth) < 20) return
    key = k
    lastWidth = width
    const current = view.definitions.find((d) => d.version === view.definition_version) ?? view.definitions[0]
    replace(head,
      h('h1', null, view.name, ' ', h('span', { class: 'pill pill-active' }, `definition v${view.definition_version}`), view.removed ? h('span', { class: 'pill pill-paused' }, 'removed') : null),
      h('div', { class: 'meta' },
        view.description ? h('span', null, view.description) : null,
        h('span', { id: 'feature-online-rows' }, `${view.online_rows.toLocaleString('en-US')} entities online`),
        h('span', null, `${view.materialized_intervals} intervals materialized`),
        view.file ? h('span', null, h('code', null, view.file)) : null))
    renderDefinition(current?.definition)
    replace(sourceBox, current ? h('pre', { class: 'source' }, current.source) : h('p', { class: 'muted' }, 'No definition stored.'),
      view.definitions.length > 1 ? h('p', { class: 'muted small' }, `Earlier definitions: ${view.definitions.filter((d) => d !== current).map((d) => `v${d.version} (${fmtTime(d.created_at)})`).join(', ')}; their history is kept.`) : null)
    renderIntervals(view, Math.max(300, width))
  }

  function renderDefinition(d) {
    if (!d) {
      replace(definitionBox, h('p', { class: 'muted' }, 'No definition stored.'))
      return
    }
    const window = (ms) => (ms === null || ms === undefined ? 'all history' : span(ms))
    replace(definitionBox,
      h('dl', { class: 'facts' },
        h('dt', null, 'Entity'), h('dd', null, (d.entity ?? []).join(', ')),
        h('dt', null, 'Source'), h('dd', null, h('a', { href: `#/datasets/${enc(d.source ?? '')}` }, d.source ?? '')),
        h('dt', null, 'Timestamp'), h('dd', null, d.timestamp ?? ''),
        h('dt', null, 'TTL'), h('dd', null, d.ttl_ms === null || d.ttl_ms === undefined ? 'none' : span(d.ttl_ms)),
        h('dt', null, 'Online'), h('dd', null, d.online ? 'yes' : 'no')),
      h('div', { class: 'table-scroll' }, h('table', { class: 'list', id: 'feature-table' },
        h('thead', null, h('tr', null, h('th', null, 'Feature'), h('th', null, 'Aggregation'), h('th', null, 'Column'), h('th', null, 'Window'))),
        h('tbody', null, (d.features ?? []).map((f) => h('tr', { dataset: { feature: f.name } },
          h('td', { class: 'col-name' }, f.name), h('td', null, h('code', null, f.agg)), h('td', null, f.column ?? '—'), h('td', null, window(f.window_ms))))))))
  }

  function renderIntervals(view, width) {
    if (view.intervals.length === 0) {
      replace(timelineBox, h('p', { class: 'muted', id: 'no-intervals' }, 'Nothing materialized yet.'))
      replace(intervalsBox)
      return
    }
    const gaps = view.gaps
    replace(timelineBox,
      h('div', { class: 'timeline-scroll' }, intervalTimeline(view.intervals, gaps, { width: width - 4, current: view.definition_version })),
      h('div', { class: 'legend' }, h('span', null, h('i', { class: 'cell tl-legend-bar' }), 'materialized'), h('span', null, h('i', { class: 'cell tl-legend-gap' }), 'gap (not materialized)')))
    replace(intervalsBox,
      gaps.length === 0
        ? h('p', { class: 'muted', id: 'feature-gaps' }, 'No gaps between the materialized intervals.')
        : h('div', { id: 'feature-gaps', class: 'gaps' }, h('strong', null, `${gaps.length} gap${gaps.length === 1 ? '' : 's'}: `),
          h('ul', null, gaps.map((g) => h('li', { dataset: { start: g.start, end: g.end } }, `${fmtTime(g.start)} → ${fmtTime(g.end)}`, h('span', { class: 'muted' }, ` (definition v${g.definition_version})`))))),
      h('details', null, h('summary', null, `Intervals (${view.intervals.length})`),
        h('div', { class: 'table-scroll' }, h('table', { class: 'list' },
          h('thead', null, h('tr', null, h('th', null, 'Interval'), h('th', null, 'Definition'), h('th', null, 'Rows'), h('th', null, 'Online'), h('th', null, 'Source'), h('th', null, 'Run'))),
          h('tbody', null, view.intervals.slice().reverse().map((i) => h('tr', null,
            h('td', null, `${fmtTime(i.start)} → ${fmtTime(i.end)}`),
            h('td', null, `v${i.definition_version}`),
            h('td', { class: 'num' }, String(i.rows)),
            h('td', { class: 'num' }, i.online_rows === null ? '—' : String(i.online_rows)),
            h('td', null, h('a', { href: `#/datasets/${enc(i.source.dataset)}?version=${i.source.version}` }, `${i.source.dataset}@${i.source.version}`)),
            h('td', null, producer(i.produced_by)))))))))
  }

  return { refresh }
}

/** 7d, 12h, 30m as a feature view file writes them; other spans in words. */
function span(ms) {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]]) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  return fmtDuration(ms)
}

/** The run that materialized an interval: a link, or its id as text when `cairn db prune` deleted it. */
function producer(by) {
  if (!by) return '—'
  if (by.run_pruned) return prunedRun(by.run_id, 'producer-pruned')
  return h('a', { href: `#/runs/${enc(by.run_id)}?task=${enc(by.task_id)}` }, by.run_id)
}
