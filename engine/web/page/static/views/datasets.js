// Datasets: the list (latest version, rows, last update), and one dataset: a version picker, what made
// the version (run and task, or an import), its schema, its lineage graph back to its sources, the
// expectation report, the rows quarantine kept aside and a preview of its first rows. Column names and
// values come from data: they are only ever set as text (dom.js), never as HTML.
import { api, enc } from '../api.js'
import { h, replace } from '../dom.js'
import { fmtTime, relative } from '../format.js'
import { lineageGraph } from '../lineage-graph.js'
import { prunedRun } from './common.js'

const PREVIEW_ROWS = 20

export function datasetListView({ container }) {
  const table = h('div', { id: 'dataset-table' })
  replace(container,
    h('div', { class: 'page-head' }, h('h1', null, 'Datasets'),
      h('div', { class: 'meta' }, h('span', null, 'Named, versioned tables made by ingest, training sets and predictions, or imported with ', h('code', null, 'cairn datasets import'), '.'))),
    table)
  let key = ''

  async function refresh() {
    const { datasets } = await api('/datasets')
    const k = JSON.stringify(datasets)
    if (k === key) return
    key = k
    if (datasets.length === 0) {
      replace(table, h('p', { class: 'muted', id: 'no-datasets' }, 'No datasets yet. An ingest task or `cairn datasets import NAME FILE` makes one.'))
      return
    }
    replace(table, h('div', { class: 'table-scroll' }, h('table', { class: 'list' },
      h('thead', null, h('tr', null, h('th', null, 'Dataset'), h('th', null, 'Latest'), h('th', null, 'Rows'), h('th', null, 'Updated'))),
      h('tbody', null, datasets.map((d) => h('tr', { dataset: { dataset: d.name } },
        h('td', null, h('a', { class: 'dag-link', href: `#/datasets/${enc(d.name)}` }, d.name)),
        h('td', null, `v${d.version}`),
        h('td', { class: 'num' }, d.rows === null ? '—' : d.rows.toLocaleString('en-US')),
        h('td', { title: fmtTime(d.updated_at) }, d.updated_at ? relative(d.updated_at) : '—')))))))
  }

  return { refresh }
}

export function datasetView({ container, name, params, navigate }) {
  const head = h('div', { class: 'page-head' })
  const picker = h('div', { class: 'card-head-actions', id: 'dataset-version-picker' })
  const schemaBox = h('div', { id: 'dataset-schema' })
  const lineageBox = h('div', { id: 'dataset-lineage' })
  const expectationsBox = h('div', { id: 'dataset-expectations' })
  const badRowsBox = h('div', { id: 'dataset-bad-rows' })
  const rowsBox = h('div', { id: 'dataset-rows' })
  const versionsBox = h('div', { id: 'dataset-versions' })
  replace(container,
    h('nav', { class: 'crumbs' }, h('a', { href: '#/datasets' }, 'Datasets'), ' / ', name),
    head,
    h('div', { class: 'columns' },
      h('section', { class: 'card grow' }, h('h2', null, 'Lineage'), lineageBox),
      h('section', { class: 'card side' }, h('h2', null, 'Schema'), schemaBox)),
    h('section', { class: 'card' }, h('h2', null, 'Expectations'), expectationsBox),
    h('section', { class: 'card' }, h('h2', null, 'Bad rows'), badRowsBox),
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', null, 'Rows'), picker), rowsBox),
    h('section', { class: 'card' }, h('h2', null, 'Versions'), versionsBox))

  const wanted = Number(params.get('version')) || null
  let versionsKey = ''
  let shownKey = ''

  async function refresh() {
    const { versions, latest_version: latest } = await api(`/datasets/${enc(name)}/versions`)
    const version = versions.find((v) => v.version === wanted) ?? versions[0]
    const key = JSON.stringify([versions.map((v) => v.version), version.version])
    if (key !== versionsKey) {
      versionsKey = key
      renderHead(version, latest)
      renderVersions(versions, version.version)
      replace(picker, h('label', { class: 'small' }, 'Version ',
        h('select', { id: 'dataset-version-select', onchange: (e) => navigate(`#/datasets/${enc(name)}?version=${e.currentTarget.value}`) },
          versions.map((v) => h('option', { value: v.version, selected: v.version === version.version }, `v${v.version} · ${plural(v.rows, 'row')}${v.version === latest ? ' · latest' : ''}`)))))
    }
    // A version never changes: everything below is read once per version shown.
    if (shownKey === String(version.version)) return
    shownKey = String(version.version)
    renderSchema(version)
    renderExpectations(version.expectations)
    const [graph, preview, bad] = await Promise.all([
      api(`/datasets/${enc(name)}/versions/${version.version}/lineage`),
      api(`/datasets/${enc(name)}/versions/${version.version}/rows?limit=${PREVIEW_ROWS}`),
      version.bad_rows ? api(`/datasets/${enc(name)}/versions/${version.version}/bad_rows?limit=100`) : null,
    ])
    renderLineage(graph, version)
    renderRows(preview)
    renderBadRows(version, bad)
  }

  function renderHead(v, latest) {
    replace(head,
      h('h1', null, name, ' ', h('span', { class: 'pill pill-active', id: 'dataset-version' }, `v${v.version}`), v.version === latest ? null : h('span', { class: 'pill pill-paused' }, `latest v${latest}`)),
      h('div', { class: 'meta', id: 'dataset-meta' },
        h('span', null, plural(v.rows, 'row')),
        h('span', null, formatBytes(v.bytes)),
        h('span', { title: v.created_at }, `published ${fmtTime(v.created_at)}`),
        h('span', { id: 'dataset-producer' }, madeBy(v))))
  }

  function renderSchema(v) {
    replace(schemaBox, h('table', { class: 'list compact' },
      h('thead', null, h('tr', null, h('th', null, 'Column'), h('th', null, 'Type'))),
      h('tbody', null, v.columns.map((c) => h('tr', null, h('td', { class: 'col-name' }, c.name), h('td', null, h('code', null, c.type)))))))
  }

  function renderLineage(graph, v) {
    if (graph.nodes.length <= 1) {
      replace(lineageBox, h('p', { class: 'muted' }, v.produced_kind === 'import' ? 'Imported from a file: no inputs.' : 'No inputs: this version was loaded from a source outside cairn.'))
      return
    }
    replace(lineageBox,
      lineageGraph(graph.nodes, graph.edges, {
        current: `dataset:${v.name}@${v.version}`,
        onSelect: (n) => navigate(n.kind === 'dataset' ? `#/datasets/${enc(n.name)}?version=${n.version}` : `#/features/${enc(n.name)}`),
      }),
      graph.truncated ? h('p', { class: 'muted small' }, 'The graph is cut short: it has too many inputs to show.') : null)
    // Left to right, the version itself is the rightmost node: on a narrow screen, start scrolled to it.
    const scroller = lineageBox.querySelector('.graph-scroll')
    if (scroller) scroller.scrollLeft = scroller.scrollWidth
  }

  function renderExpectations(report) {
    const checks = Array.isArray(report) ? report : Array.isArray(report?.checks) ? report.checks : null
    if (report === null || report === undefined || (checks && checks.length === 0)) {
      replace(expectationsBox, h('p', { class: 'muted' }, 'No expectations were checked for this version.'))
      return
    }
    if (!checks) {
      replace(expectationsBox, h('pre', { class: 'outputs' }, JSON.stringify(report, null, 2)))
      return
    }
    replace(expectationsBox, h('div', { class: 'table-scroll' }, h('table', { class: 'list' },
      h('thead', null, h('tr', null, h('th', null, 'Result'), h('th', null, 'Expectation'), h('th', null, 'Expected'), h('th', null, 'Observed'))),
      h('tbody', null, checks.map((c) => {
        const passed = c?.passed ?? c?.ok
        const label = [c?.expectation ?? c?.name ?? c?.check ?? '', Array.isArray(c?.columns) ? `(${c.columns.join(', ')})` : ''].filter(Boolean).join(' ')
        return h('tr', { class: 'expectation', dataset: { passed: String(passed) } },
          h('td', null, h('span', { class: `badge ${passed === true ? 'st-success' : passed === false ? 'st-failed' : 'st-queued'}` }, passed === true ? 'passed' : passed === false ? 'failed' : '—')),
          h('td', null, label),
          h('td', null, h('code', null, shortJson(c?.expected))),
          h('td', null, h('code', null, shortJson(c?.observed ?? c?.actual))))
      })))))
  }

  function renderBadRows(v, bad) {
    if (!v.bad_rows) {
      replace(badRowsBox, h('p', { class: 'muted', id: 'no-bad-rows' }, 'None: no row was quarantined.'))
      return
    }
    replace(badRowsBox,
      h('p', null, h('strong', { id: 'bad-rows-count' }, `${v.bad_rows.count} row${v.bad_rows.count === 1 ? '' : 's'}`), ' kept aside by ', h('code', null, 'on_bad_rows: quarantine'),
        bad && bad.rows.length < v.bad_rows.count ? h('span', { class: 'muted' }, ` (the first ${bad.rows.length} shown)`) : null),
      bad?.message ? h('p', { class: 'muted' }, bad.message) : null,
      bad && bad.rows.length > 0 ? textTable(bad.columns, bad.rows, 'bad-rows-table') : null)
  }

  function renderRows(preview) {
    if (preview.rows.length === 0) {
      replace(rowsBox, h('p', { class: 'muted' }, 'This version has no rows.'))
      return
    }
    replace(rowsBox,
      h('p', { class: 'muted small' }, preview.total > preview.rows.length
        ? [`The first ${preview.rows.length} of ${plural(preview.total, 'row')}; `, h('code', null, `cairn datasets export ${name} --version ${preview.version}`), ' writes them all.']
        : preview.total === 1 ? 'Its only row.' : `All ${preview.total} rows.`),
      textTable(preview.columns.map((c) => c.name), preview.rows, 'rows-table'))
  }

  function renderVersions(versions, shown) {
    replace(versionsBox, h('div', { class: 'table-scroll' }, h('table', { class: 'list' },
      h('thead', null, h('tr', null, h('th', null, 'Version'), h('th', null, 'Rows'), h('th', null, 'Published'), h('th', null, 'Made by'), h('th', null, 'Bad rows'))),
      h('tbody', null, versions.map((v) => h('tr', { class: v.version === shown ? 'selected-row' : '', dataset: { version: v.version } },
        h('td', null, h('a', { href: `#/datasets/${enc(name)}?version=${v.version}` }, `v${v.version}`)),
        h('td', { class: 'num' }, v.rows.toLocaleString('en-US')),
        h('td', null, fmtTime(v.created_at)),
        h('td', null, madeBy(v)),
        h('td', { class: 'num' }, v.bad_rows ? String(v.bad_rows.count) : '—')))))))
  }

  return { refresh }
}

function madeBy(v) {
  if (v.produced_by?.run_pruned) return [`${v.produced_kind}: `, prunedRun(`${v.produced_by.run_id} / ${v.produced_by.task_id}`, 'producer-pruned')]
  if (v.produced_by) {
    return [`${v.produced_kind}: `, h('a', { href: `#/runs/${enc(v.produced_by.run_id)}?task=${enc(v.produced_by.task_id)}`, class: 'producer-link' }, `${v.produced_by.run_id} / ${v.produced_by.task_id}`)]
  }
  return `${v.produced_kind}${v.actor ? ` by ${v.actor}` : ''}`
}

/** A table of text values; null shows as a muted "null" so it differs from an empty string. */
function textTable(columns, rows, id) {
  return h('div', { class: 'table-scroll' }, h('table', { class: 'list data-table', id },
    h('thead', null, h('tr', null, columns.map((c) => h('th', null, c)))),
    h('tbody', null, rows.map((row) => h('tr', null, row.map((value) => (value === null ? h('td', { class: 'null' }, 'null') : h('td', null, value))))))))
}

function plural(n, word) {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`
}

function shortJson(value) {
  if (value === undefined) return ''
  const text = JSON.stringify(value)
  return text.length > 120 ? `${text.slice(0, 119)}…` : text
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`
  const units = ['KB', 'MB', 'GB', 'TB']
  let value = n / 1024
  let i = 0
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024
    i++
  }
  return `${value.toFixed(1)} ${units[i]}`
}
