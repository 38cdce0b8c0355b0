// One DAG: its graph (live states of the chosen run), a grid of recent runs by tasks (one request per
// page, paginated with the runs cursor), the trigger form generated from its params, pause/unpause,
// and its source with the version history.
import { api, enc } from '../api.js'
import { h, replace } from '../dom.js'
import { dagGraph } from '../graph.js'
import { between, dependencyOrder, fmtDuration, fmtShort, fmtTime } from '../format.js'
import { paramsForm } from '../params-form.js'
import { canOperate, notice, pauseButton, stateBadge } from './common.js'

const PAGE_SIZE = 20

export function dagView({ container, session, dagId, params }) {
  const pageSize = Math.min(100, Math.max(1, Number(params.get('limit')) || PAGE_SIZE))
  const message = notice()
  const head = h('div', { class: 'page-head' })
  const graphBox = h('div', { id: 'graph' })
  const graphCaption = h('div', { class: 'caption', id: 'graph-caption' })
  const triggerBox = h('div', { id: 'trigger' })
  const triggerResult = notice()
  const gridBox = h('div', { id: 'grid' })
  const pager = h('div', { class: 'pager' })
  const versionPicker = h('div', { class: 'card-head-actions', id: 'version-picker' })
  const sourceBox = h('pre', { class: 'source', id: 'dag-source' }, 'Loading…')
  const errorsBox = h('div', { id: 'dag-import-errors' })
  replace(container,
    h('nav', { class: 'crumbs' }, h('a', { href: '#/' }, 'DAGs'), ' / ', dagId),
    head, message.el, errorsBox,
    h('div', { class: 'columns' },
      h('section', { class: 'card grow' }, h('h2', null, 'Graph'), graphCaption, graphBox),
      canOperate(session) ? h('section', { class: 'card side' }, h('h2', null, 'Trigger'), triggerResult.el, triggerBox) : null),
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', null, 'Runs'), pager), gridBox),
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', null, 'Source'), versionPicker), sourceBox))

  let definition
  let definitionKey = ''
  let paramsKey
  let graph
  let tasks = []
  const cursors = [null] // cursor of each page shown so far; the last is the current page
  let nextCursor = null
  let runs = []
  let rowTasks = [] // grid rows: the current version's tasks, then any only older versions had
  const taskCache = new Map() // run id -> { state, tasks: { task id -> { state, attempts } } }
  let selectedRun = null
  let gridKey = ''
  let versionsKey = ''
  let shownVersion = null // null: the current version
  const sources = new Map() // version id -> source text (versions never change)

  async function refresh() {
    const [def, grid] = await Promise.all([
      api(`/dags/${enc(dagId)}`),
      api(`/dags/${enc(dagId)}/grid?limit=${pageSize}${cursors.at(-1) ? `&cursor=${enc(cursors.at(-1))}` : ''}`),
    ])
    definition = def
    runs = grid.runs
    rowTasks = grid.tasks
    nextCursor = grid.next_cursor
    taskCache.clear()
    for (const run of runs) taskCache.set(run.run_id, { state: run.state, tasks: Object.fromEntries(Object.entries(run.tasks).map(([id, t]) => [id, { task_id: id, ...t }])) })
    render()
    renderImportErrors(definition.import_errors ?? [])
    await renderSource()
  }

  // Problems of this DAG's file, or of another file declaring the same DAG id; its last good version keeps running.
  let importErrorsKey = ''
  function renderImportErrors(importErrors) {
    const key = JSON.stringify(importErrors)
    if (key === importErrorsKey) return
    importErrorsKey = key
    replace(errorsBox, importErrors.map((e) => h('div', { class: 'import-error', dataset: { file: e.file } },
      h('div', null, h('strong', null, e.file), h('span', { class: 'muted' }, e.file === definition.file ? ' (this DAG\'s file; its last good version keeps running)' : ` (declares DAG ${e.dag_id ?? '?'})`)),
      h('pre', { class: 'diagnostics' }, (e.diagnostics ?? []).map((d) =>
        h('div', { class: d.severity === 'warning' ? 'warn' : 'err' }, `${d.file ?? e.file}:${d.line ?? 0}:${d.column ?? 0}: ${d.severity ?? 'error'} ${d.code ?? ''}: ${d.message ?? ''}`))))))
  }

  async function renderSource() {
    const key = String(definition.version_id)
    if (key !== versionsKey) {
      versionsKey = key
      const { versions } = await api(`/dags/${enc(dagId)}/versions?limit=50`)
      replace(versionPicker, h('label', { class: 'small' }, 'Version ',
        h('select', { id: 'version-select', onchange: (e) => { shownVersion = Number(e.currentTarget.value); void renderSource() } },
          versions.map((v) => h('option', { value: v.version_id, selected: (shownVersion ?? definition.version_id) === v.version_id },
            `v${v.version_id} · ${fmtTime(v.created_at)} · ${v.runs} run${v.runs === 1 ? '' : 's'}${v.current ? ' · current' : ''}`)))))
    }
    const version = shownVersion ?? definition.version_id
    if (version == null) return
    if (!sources.has(version)) sources.set(version, (await api(`/dags/${enc(dagId)}/versions/${version}`)).source)
    if (sourceBox.dataset.version !== String(version)) {
      sourceBox.dataset.version = String(version)
      sourceBox.textContent = sources.get(version)
    }
  }

  function render() {
    replace(head,
      h('h1', null, definition.dag_id, ' ', h('span', { class: `pill ${definition.paused ? 'pill-paused' : 'pill-active'}`, id: 'dag-paused' }, definition.paused ? 'paused' : 'active')),
      h('div', { class: 'meta' },
        definition.description ? h('span', null, definition.description) : null,
        h('span', null, 'Schedule: ', definition.schedule ? h('code', null, definition.schedule) : null, ' ', definition.schedule_description ?? '', definition.schedule ? ` (${definition.timezone})` : ''),
        definition.waiting_for?.length ? h('span', { class: 'muted waiting-for' }, ` · waiting for: ${definition.waiting_for.join(', ')}`) : null),
      canOperate(session) ? h('div', { class: 'head-actions' }, pauseButton(definition, refresh, (e) => message.error(e))) : null)

    const key = JSON.stringify(definition.tasks)
    if (key !== definitionKey) {
      definitionKey = key
      tasks = dependencyOrder(definition.tasks)
      graph = dagGraph(tasks, { onSelect: (taskId) => selectedRunId() && (location.hash = `#/runs/${enc(selectedRunId())}?task=${enc(taskId)}`) })
      replace(graphBox, graph.el)
      gridKey = ''
    }
    const pk = JSON.stringify(definition.params)
    if (pk !== paramsKey && canOperate(session)) {
      paramsKey = pk
      replace(triggerBox, paramsForm(definition.params, trigger))
    }
    const runId = selectedRunId()
    graph.setStates(runId ? stateMap(runId) : {})
    replace(graphCaption, runId
      ? ['States of run ', h('a', { href: `#/runs/${enc(runId)}`, id: 'graph-run' }, runId), ' ', stateBadge(taskCache.get(runId)?.state ?? 'queued')]
      : h('span', { class: 'muted' }, 'No runs yet.'))
    renderGrid()
  }

  const selectedRunId = () => (selectedRun && runs.some((r) => r.run_id === selectedRun) ? selectedRun : runs[0]?.run_id ?? null)
  const stateMap = (runId) => Object.fromEntries(Object.values(taskCache.get(runId)?.tasks ?? {}).map((t) => [t.task_id, t.state]))

  function renderGrid() {
    const shown = runs.slice().reverse() // oldest left, newest right
    const key = JSON.stringify([rowTasks, shown.map((r) => [r.run_id, r.state, stateMap(r.run_id)]), selectedRunId(), cursors.length, nextCursor])
    if (key === gridKey) return
    gridKey = key
    replace(pager,
      h('button', { type: 'button', id: 'runs-older', disabled: !nextCursor, onclick: () => { cursors.push(nextCursor); void refresh() } }, '← Older'),
      h('span', { class: 'muted small' }, cursors.length === 1 ? 'newest runs' : `page ${cursors.length}`),
      h('button', { type: 'button', id: 'runs-newer', disabled: cursors.length === 1, onclick: () => { cursors.pop(); void refresh() } }, 'Newer →'))
    if (shown.length === 0) {
      replace(gridBox, h('p', { class: 'muted' }, 'No runs yet.'))
      return
    }
    const selected = selectedRunId()
    // Airflow's grid: a bar per run whose height is its duration (against the longest shown), its date
    // under it, then its tasks.
    const durations = shown.map((run) => between(run.started_at, run.ended_at))
    const longest = Math.max(1, ...durations.filter((d) => d !== null))
    const bars = h('tr', { class: 'duration-row' }, h('th', { class: 'task-col muted small' }, `duration (max ${fmtDuration(longest)})`), shown.map((run, i) =>
      h('td', { class: run.run_id === selected ? 'selected' : '' },
        h('div', { class: 'dur-box' },
          durations[i] === null ? null : h('div', {
            class: `dur-bar st-${run.state}`,
            dataset: { run: run.run_id, ms: Math.round(durations[i]) },
            style: { height: `${Math.max(2, Math.round((durations[i] / longest) * 60))}px` },
            title: `${run.run_id}\nduration ${fmtDuration(durations[i])}`,
          })))))
    const header = h('tr', null, h('th', { class: 'task-col' }, 'task \\ run'), shown.map((run) =>
      h('th', { class: `run-col ${run.run_id === selected ? 'selected' : ''}` },
        h('button', {
          type: 'button',
          class: `run-mark st-${run.state}`,
          dataset: { run: run.run_id, state: run.state },
          title: `${run.run_id}\n${run.state} · ${run.run_type} · ${fmtTime(run.logical_date)}\nduration ${fmtDuration(between(run.started_at, run.ended_at))}\nclick: show in the graph`,
          onclick: () => { selectedRun = run.run_id; render() },
        }),
        h('div', { class: 'run-date', title: fmtTime(run.logical_date) }, fmtShort(run.logical_date)))))
    const rows = rowTasks.map((task) => h('tr', null,
      h('th', { class: 'task-col', scope: 'row' }, task.task_id),
      shown.map((run) => {
        const ti = taskCache.get(run.run_id)?.tasks[task.task_id]
        const state = ti?.state ?? 'none'
        return h('td', { class: run.run_id === selected ? 'selected' : '' },
          h('a', {
            class: `cell st-${state}`,
            href: `#/runs/${enc(run.run_id)}?task=${enc(task.task_id)}`,
            dataset: { run: run.run_id, task: task.task_id, state },
            title: `${task.task_id} · ${run.run_id}\n${state}${ti?.attempts > 1 ? ` (attempt ${ti.attempts})` : ''}`,
          }))
      })))
    replace(gridBox, h('div', { class: 'grid-scroll' }, h('table', { class: 'grid' }, h('thead', null, bars, header), h('tbody', null, rows))),
      h('div', { class: 'legend' }, ['pending', 'queued', 'running', 'success', 'failed', 'up_for_retry', 'upstream_failed', 'skipped', 'cancelled'].map((st) => h('span', null, h('i', { class: `cell st-${st}` }), st.replace(/_/g, ' ')))))
  }

  async function trigger(body) {
    triggerResult.clear()
    try {
      const result = await api(`/dags/${enc(dagId)}/runs`, { method: 'POST', body })
      triggerResult.ok('Triggered ', h('a', { href: `#/runs/${enc(result.run_id)}`, id: 'triggered-run' }, result.run_id))
      selectedRun = result.run_id
      if (cursors.length > 1) cursors.splice(1)
      await refresh()
    } catch (error) {
      triggerResult.error(error)
    }
  }

  return { refresh }
}
