// The DAG list: schedule (cron and in words), next run, paused, marks for the last runs, and every
// file that failed to import with its FILE:LINE:COL diagnostics.
import { api, enc } from '../api.js'
import { h, replace } from '../dom.js'
import { fmtTime, relative } from '../format.js'
import { canOperate, notice, pauseButton } from './common.js'

export function dagListView({ container, session }) {
  const message = notice()
  const table = h('div', { id: 'dag-table' })
  const errors = h('section', { id: 'import-errors' })
  replace(container, h('div', { class: 'page-head' }, h('h1', null, 'DAGs')), message.el, table, errors)

  async function refresh() {
    const data = await api('/dags')
    // Re-render only when something changed (or the relative times need it): no flicker under the pointer.
    const key = JSON.stringify(data)
    if (key === lastKey && Date.now() - lastRender < 15_000) return
    lastKey = key
    lastRender = Date.now()
    renderTable(data.dags)
    renderErrors(data.import_errors)
  }
  let lastKey = ''
  let lastRender = 0

  function renderTable(dags) {
    if (dags.length === 0) {
      replace(table, h('p', { class: 'muted' }, 'No DAGs yet: put a DAG file in the DAG folder and it appears here within seconds.'))
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
          dag.tags?.length ? h('div', null, dag.tags.map((t) => h('span', { class: 'tag' }, t))) : null),
        h('td', null, dag.owner ?? ''),
        h('td', null,
          dag.schedule ? h('code', null, dag.schedule) : null,
          h('div', { class: 'small' }, words ?? ''),
          dag.schedule && dag.timezone !== 'UTC' ? h('div', { class: 'muted small' }, dag.timezone) : null),
        h('td', { class: 'next-run' }, dag.next_run
          ? [h('div', null, fmtTime(dag.next_run.logical_date)), h('div', { class: 'muted small', title: `created at ${fmtTime(dag.next_run.run_after)}` }, relative(dag.next_run.run_after))]
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
