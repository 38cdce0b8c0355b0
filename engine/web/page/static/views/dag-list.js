// The DAG list: schedule (cron and in words), next run, paused, marks for the last runs, and every
// file that failed to import with its FILE:LINE:COL diagnostics. A filter bar narrows the list by text
// (id, description, owner, tags), tag, owner and state; the filter lives in the URL so it can be shared.
import { api, enc } from '../api.js'
import { h, replace } from '../dom.js'
import { fmtTime, relative } from '../format.js'
import { canOperate, notice, pauseButton } from './common.js'

/** What the state filter offers; each tests one DAG of GET /dags. */
const STATE_FILTERS = {
  active: (dag) => !dag.paused,
  paused: (dag) => dag.paused,
  running: (dag) => (dag.recent_runs ?? []).some((r) => r.state === 'running' || r.state === 'queued'),
  failed: (dag) => dag.recent_runs?.[0]?.state === 'failed',
  import_errors: (dag) => dag.import_errors > 0,
}
const STATE_LABELS = { active: 'active', paused: 'paused', running: 'running now', failed: 'last run failed', import_errors: 'import errors' }

/**
 * "Next run" says when the run will start: the scheduler creates a scheduled run once its data interval
 * has ended (`run_after`, the interval's end). Its logical date (the interval's start, what `ds` and the
 * run's id carry) is the secondary line, and the whole interval is in the tooltip.
 */
function nextRunTitle(next) {
  return `logical date ${fmtTime(next.logical_date)}\ndata interval ${fmtTime(next.logical_date)} – ${fmtTime(next.data_interval_end)}\ncreated once the interval has ended`
}

function dueText(runAfter, now = Date.now()) {
  return new Date(runAfter).getTime() <= now ? 'due now' : relative(runAfter, now)
}

/** The DAGs that pass the filter (pure: also used by the tests through the page). */
export function filterDags(dags, { q = '', tag = '', owner = '', state = '' }) {
  const words = q.toLowerCase().split(/\s+/).filter(Boolean)
  return dags.filter((dag) => {
    if (tag && !(dag.tags ?? []).includes(tag)) return false
    if (owner && (dag.owner ?? '') !== owner) return false
    if (state && STATE_FILTERS[state] && !STATE_FILTERS[state](dag)) return false
    const text = [dag.dag_id, dag.description, dag.owner, ...(dag.tags ?? [])].filter(Boolean).join(' ').toLowerCase()
    return words.every((w) => text.includes(w))
  })
}

export function dagListView({ container, session, params }) {
  const message = notice()
  const table = h('div', { id: 'dag-table' })
  const errors = h('section', { id: 'import-errors' })
  const filter = { q: params?.get('q') ?? '', tag: params?.get('tag') ?? '', owner: params?.get('owner') ?? '', state: params?.get('state') ?? '' }
  const search = h('input', { id: 'dag-search', type: 'search', placeholder: 'Search DAGs by id, owner, tag or description', value: filter.q, 'aria-label': 'search DAGs', oninput: (e) => setFilter({ q: e.currentTarget.value }) })
  const tagSelect = h('select', { id: 'dag-tag', 'aria-label': 'tag', onchange: (e) => setFilter({ tag: e.currentTarget.value }) })
  const ownerSelect = h('select', { id: 'dag-owner', 'aria-label': 'owner', onchange: (e) => setFilter({ owner: e.currentTarget.value }) })
  const stateSelect = h('select', { id: 'dag-state', 'aria-label': 'state', onchange: (e) => setFilter({ state: e.currentTarget.value }) },
    h('option', { value: '' }, 'any state'),
    Object.entries(STATE_LABELS).map(([value, label]) => h('option', { value, selected: filter.state === value }, label)))
  const count = h('span', { class: 'muted small', id: 'dag-count' })
  replace(container, h('div', { class: 'page-head' }, h('h1', null, 'DAGs')), message.el,
    h('div', { class: 'filters', role: 'search' }, search, tagSelect, ownerSelect, stateSelect, count), table, errors)
  let lastData

  function setFilter(change) {
    Object.assign(filter, change)
    const query = new URLSearchParams(Object.entries(filter).filter(([, v]) => v)).toString()
    history.replaceState(null, '', `#/${query ? `?${query}` : ''}`)
    if (lastData) renderTable(lastData.dags)
  }

  function renderChoices(select, values, current, anyLabel) {
    const key = JSON.stringify([values, current])
    if (select.dataset.key === key) return
    select.dataset.key = key
    replace(select, h('option', { value: '' }, anyLabel), values.map((v) => h('option', { value: v, selected: v === current }, v)))
  }

  async function refresh() {
    const data = await api('/dags')
    // Re-render only when something changed (or the relative times need it): no flicker under the pointer.
    const key = JSON.stringify(data)
    if (key === lastKey && Date.now() - lastRender < 15_000) return
    lastKey = key
    lastRender = Date.now()
    lastData = data
    renderTable(data.dags)
    renderErrors(data.import_errors)
  }
  let lastKey = ''
  let lastRender = 0

  function renderTable(all) {
    const sorted = (values) => [...new Set(values.filter(Boolean))].sort()
    renderChoices(tagSelect, sorted(all.flatMap((d) => d.tags ?? [])), filter.tag, 'any tag')
    renderChoices(ownerSelect, sorted(all.map((d) => d.owner)), filter.owner, 'any owner')
    if (all.length === 0) {
      count.textContent = ''
      replace(table, h('p', { class: 'muted' }, 'No DAGs yet: put a DAG file in the DAG folder and it appears here within seconds.'))
      return
    }
    const dags = filterDags(all, filter)
    count.textContent = dags.length === all.length ? `${all.length} DAG${all.length === 1 ? '' : 's'}` : `${dags.length} of ${all.length} DAGs`
    if (dags.length === 0) {
      replace(table, h('p', { class: 'muted', id: 'no-match' }, 'No DAG matches the filter.'))
      return
    }
    const rows = dags.map((dag) => {
      const words = dag.schedule_description
      const runs = (dag.recent_runs ?? []).slice().reverse() // oldest left, newest right
      return h('tr', { dataset: { dag: dag.dag_id }, class: dag.paused ? 'paused' : '' },
        h('td', null,
          h('a', { href: `#/dags/${enc(dag.dag_id)}`, class: 'dag-link' }, dag.dag_id),
          dag.import_errors > 0 ? h('span', { class: 'badge st-failed', title: 'the file has errors; its last good version keeps running' }, `${dag.import_errors} import error${dag.import_errors > 1 ? 's' : ''}`) : null,
          dag.description ? h('div', { class: 'muted small' }, dag.description) : null,
          dag.tags?.length ? h('div', null, dag.tags.map((t) => h('button', { type: 'button', class: 'tag', title: `show only DAGs tagged ${t}`, onclick: () => { tagSelect.value = t; setFilter({ tag: t }) } }, t))) : null),
        h('td', null, dag.owner ?? ''),
        h('td', null,
          dag.schedule ? h('code', null, dag.schedule) : null,
          h('div', { class: 'small' }, words ?? ''),
          dag.waiting_for?.length ? h('div', { class: 'muted small waiting-for', title: 'a run starts once each of these has a new version' }, `waiting for: ${dag.waiting_for.join(', ')}`) : null,
          dag.schedule && dag.timezone !== 'UTC' ? h('div', { class: 'muted small' }, dag.timezone) : null),
        h('td', { class: 'next-run', title: dag.next_run ? nextRunTitle(dag.next_run) : null }, dag.next_run
          ? [
              h('div', { class: 'next-run-at' }, fmtTime(dag.next_run.run_after)),
              h('div', { class: 'muted small' }, dueText(dag.next_run.run_after)),
              h('div', { class: 'muted small next-run-logical' }, `logical date ${fmtTime(dag.next_run.logical_date)}`),
            ]
          : h('span', { class: 'muted' }, dag.paused && dag.schedule ? 'paused' : '—')),
        h('td', { class: 'paused-cell' },
          h('span', { class: `pill ${dag.paused ? 'pill-paused' : 'pill-active'}` }, dag.paused ? 'paused' : 'active'),
          canOperate(session) ? pauseButton(dag, () => ((lastKey = ''), refresh()), (e) => message.error(e)) : null),
        h('td', { class: 'recent-runs' }, runs.length === 0
          ? h('span', { class: 'muted small' }, 'no runs')
          : runs.map((run) => h('a', { href: `#/runs/${enc(run.run_id)}`, class: `run-mark st-${run.state}`, dataset: { state: run.state }, title: `${run.run_id}\n${run.state} · ${fmtTime(run.logical_date)}` }))))
    })
    replace(table, h('table', { class: 'list' },
      h('thead', null, h('tr', null, ['DAG', 'Owner', 'Schedule', 'Next run', 'Paused', 'Last runs'].map((t) => h('th', null, t)))),
      h('tbody', null, rows)))
    table.classList.add('table-scroll')
  }

  function renderErrors(importErrors) {
    if (!importErrors.length) {
      replace(errors)
      return
    }
    replace(errors,
      h('h2', null, `Import errors (${importErrors.length} file${importErrors.length > 1 ? 's' : ''})`),
      importErrors.map((e) => h('div', { class: 'import-error', dataset: { file: e.file } },
        h('div', null, h('strong', null, e.file), e.dag_id ? h('span', { class: 'muted' }, ` (DAG ${e.dag_id})`) : null),
        h('pre', { class: 'diagnostics' }, (e.diagnostics ?? []).map((d) =>
          h('div', { class: d.severity === 'warning' ? 'warn' : 'err' }, `${d.file ?? e.file}:${d.line ?? 0}:${d.column ?? 0}: ${d.severity ?? 'error'} ${d.code ?? ''}: ${d.message ?? ''}`))))))
  }

  return { refresh }
}
