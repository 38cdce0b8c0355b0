// One run: its state and params, a Gantt chart of task attempts or the graph with this run's states
// (a switch, kept in the URL as ?view=graph), the task instances, and for the
// chosen task its attempts, outputs and a live log tail; cancel the run, clear (retry) a task and
// everything downstream of it, mark a finished task success or failed. A `train` task also gets its
// executor, job and ranks (train-panel.js) with per-rank log filters, a gate its report (gate-report.js).
import { api, enc } from '../api.js'
import { h, replace } from '../dom.js'
import { between, dependencyOrder, fmtDuration, fmtTime, isTerminal } from '../format.js'
import { dagGraph } from '../graph.js'
import { ganttChart } from '../gantt.js'
import { logTail } from '../log-tail.js'
import { canOperate, notice, stateBadge } from './common.js'
import { gateReport, isGateOutputs } from './gate-report.js'
import { driftReport, isDriftOutputs } from './drift-report.js'
import { trainFacts, trainPanel } from './train-panel.js'

/** How often the page re-reads a running train task's job (Slurm state, ranks and hosts). */
const JOB_POLL_MS = 2000

export function runView({ container, session, runId, params }) {
  const message = notice()
  const crumbs = h('nav', { class: 'crumbs' })
  const head = h('div', { class: 'page-head' })
  const ganttBox = h('div', { id: 'gantt', class: 'gantt-scroll' })
  const runGraphBox = h('div', { id: 'run-graph', hidden: true })
  let view = params.get('view') === 'graph' ? 'graph' : 'timeline'
  const viewTab = (name, label) => h('button', { type: 'button', role: 'tab', id: `run-view-${name}`, class: `tab ${view === name ? 'active' : ''}`, 'aria-selected': String(view === name), onclick: () => setView(name) }, label)
  const viewTabs = h('div', { class: 'tabs', role: 'tablist' })
  const taskTable = h('div', { id: 'task-table' })
  const detailHead = h('div', { id: 'task-detail-head' })
  const attemptTabs = h('div', { class: 'tabs', id: 'attempt-tabs', role: 'tablist' })
  const logBox = h('div', { id: 'log-box' })
  const operatorBox = h('div', { id: 'task-operator-panel' })
  const detail = h('section', { class: 'card side wide', id: 'task-detail', hidden: true }, detailHead, h('h3', null, 'Log'), attemptTabs, logBox)
  replace(container, crumbs, head, message.el,
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', null, view === 'graph' ? 'Graph' : 'Timeline'), viewTabs), ganttBox, runGraphBox),
    h('div', { class: 'columns' }, h('section', { class: 'card grow' }, h('h2', null, 'Tasks'), taskTable), detail))

  let run
  let tasks = []
  let attempts = []
  let trainJobs = {} // what the run's DAG version declares for its train tasks
  let selectedTask = params.get('task')
  let selectedAttempt = null // null: follow the latest attempt
  let tail
  let tailKey = ''
  let tabsKey = ''
  let graph
  let graphKey = ''
  let jobPoll // while a train task's job runs: its state and ranks change without a task state change
  let ranksInLog = [] // ranks whose lines the current log tail has seen
  let shownRank = null // the log's rank filter (null: every line)

  function setView(name) {
    view = name
    const query = new URLSearchParams(selectedTask ? { task: selectedTask } : {})
    if (view === 'graph') query.set('view', 'graph')
    history.replaceState(null, '', `#/runs/${enc(runId)}${query.size ? `?${query}` : ''}`)
    container.querySelector('.card-head h2').textContent = view === 'graph' ? 'Graph' : 'Timeline'
    render()
  }

  async function refresh() {
    const [data, att] = await Promise.all([api(`/runs/${enc(runId)}/tasks`), api(`/runs/${enc(runId)}/attempts`)])
    run = data.run
    tasks = data.tasks
    attempts = att.attempts
    trainJobs = att.train_jobs ?? {}
    if (selectedTask && !tasks.some((t) => t.task_id === selectedTask)) selectedTask = null
    render()
  }

  function select(taskId, attempt = null) {
    selectedTask = taskId
    selectedAttempt = attempt
    history.replaceState(null, '', `#/runs/${enc(runId)}?task=${enc(taskId)}${view === 'graph' ? '&view=graph' : ''}`)
    render()
  }

  function render() {
    replace(crumbs, h('a', { href: '#/' }, 'DAGs'), ' / ', h('a', { href: `#/dags/${enc(run.dag_id)}` }, run.dag_id), ' / ', run.run_id)
    const active = run.state === 'queued' || run.state === 'running'
    replace(head,
      h('h1', null, run.run_id, ' ', h('span', { id: 'run-state' }, stateBadge(run.state))),
      h('div', { class: 'meta' },
        h('span', null, run.run_type),
        h('span', null, 'logical date ', fmtTime(run.logical_date)),
        h('span', null, 'queued ', fmtTime(run.queued_at)),
        h('span', null, 'started ', fmtTime(run.started_at)),
        h('span', null, 'ended ', fmtTime(run.ended_at)),
        h('span', null, 'duration ', fmtDuration(between(run.started_at, run.ended_at)))),
      run.params && Object.keys(run.params).length ? h('div', { class: 'meta' }, 'params ', h('code', { id: 'run-params' }, JSON.stringify(run.params))) : null,
      canOperate(session) && active ? h('div', { class: 'head-actions' }, h('button', { type: 'button', id: 'cancel-run', class: 'danger', onclick: cancel }, 'Cancel run')) : null)

    replace(viewTabs, viewTab('timeline', 'Timeline'), viewTab('graph', 'Graph'))
    ganttBox.hidden = view !== 'timeline'
    runGraphBox.hidden = view !== 'graph'
    if (view === 'timeline') {
      const width = Math.max(600, ganttBox.clientWidth || container.clientWidth || 900)
      const chart = ganttChart(tasks.map((t) => t.task_id), attempts, { width, onSelect: select, selected: selectedTask })
      replace(ganttBox, chart ?? h('p', { class: 'muted' }, 'No task has started yet.'))
    } else {
      const shape = tasks.map((t) => ({ task_id: t.task_id, operator: t.operator ?? '', depends_on: t.depends_on ?? [] }))
      const key = JSON.stringify(shape)
      if (key !== graphKey) {
        graphKey = key
        graph = dagGraph(dependencyOrder(shape), { onSelect: select })
        replace(runGraphBox, graph.el)
      }
      graph.setStates(Object.fromEntries(tasks.map((t) => [t.task_id, t.state])))
    }

    const operate = canOperate(session)
    replace(taskTable, h('table', { class: 'list tasks' },
      h('thead', null, h('tr', null, ['Task', 'State', 'Attempts', 'Started', 'Ended', 'Duration', 'Operator', ...(operate ? ['Mark'] : [])].map((t) => h('th', null, t)))),
      h('tbody', null, tasks.map((t) => h('tr', { class: `task-row ${t.task_id === selectedTask ? 'selected' : ''}`, dataset: { task: t.task_id, state: t.state }, onclick: () => select(t.task_id) },
        h('td', null, h('a', { href: `#/runs/${enc(runId)}?task=${enc(t.task_id)}`, onclick: (e) => { e.preventDefault(); select(t.task_id) } }, t.task_id)),
        h('td', null, stateBadge(t.state)),
        h('td', null, String(t.attempts)),
        h('td', null, fmtTime(t.started_at)),
        h('td', null, fmtTime(t.ended_at)),
        h('td', null, fmtDuration(between(t.started_at, t.ended_at))),
        h('td', null, t.operator ?? ''),
        operate ? h('td', { class: 'mark' }, markButtons(t)) : null)))))
    renderDetail()
  }

  function renderDetail() {
    const task = tasks.find((t) => t.task_id === selectedTask)
    detail.hidden = !task
    if (!task) {
      tail?.close()
      tail = undefined
      tailKey = ''
      return
    }
    const mine = attempts.filter((a) => a.task_id === task.task_id)
    const runOver = isTerminal(run.state)
    replace(detailHead,
      h('h2', null, task.task_id, ' ', stateBadge(task.state)),
      h('div', { class: 'meta' }, h('span', null, `operator ${task.operator ?? '?'}`), task.depends_on?.length ? h('span', null, `after ${task.depends_on.join(', ')}`) : null, h('span', null, `pool ${task.pool ?? 'default'}`)),
      task.next_retry_at ? h('div', { class: 'meta' }, `next try at ${fmtTime(task.next_retry_at)}`) : null,
      task.message ? h('div', { class: 'task-message' }, task.failure_kind ? h('strong', null, `${task.failure_kind}: `) : null, task.message) : null,
      h('h3', null, 'Attempts'),
      mine.length === 0 ? h('p', { class: 'muted small' }, 'not started yet') : h('table', { class: 'list attempts' },
        h('thead', null, h('tr', null, ['#', 'State', 'Started', 'Duration', 'Exit', 'Worker'].map((t) => h('th', null, t)))),
        h('tbody', null, mine.map((a) => h('tr', { dataset: { attempt: a.attempt, state: a.state } },
          h('td', null, String(a.attempt)), h('td', null, stateBadge(a.state)), h('td', null, fmtTime(a.started_at)),
          h('td', null, fmtDuration(between(a.started_at, a.ended_at))), h('td', null, a.exit_code ?? ''), h('td', { class: 'small' }, a.worker_id ?? ''))))),
      operatorBox,
      h('h3', null, 'Outputs'),
      task.outputs && Object.keys(task.outputs).length ? h('pre', { class: 'outputs', id: 'task-outputs' }, JSON.stringify(task.outputs, null, 2)) : h('p', { class: 'muted small' }, 'none'),
      canOperate(session) ? h('div', { class: 'actions' },
        h('button', {
          type: 'button', id: 'clear-task', disabled: !runOver,
          title: runOver ? 'run this task and everything downstream of it again' : 'a task can be cleared once its run has finished (cancel the run first)',
          onclick: () => clearTask(task.task_id),
        }, ['failed', 'upstream_failed', 'cancelled'].includes(task.state) ? 'Retry task' : 'Clear task')) : null)

    const tk = JSON.stringify([task.task_id, task.attempts, selectedAttempt])
    if (tk !== tabsKey) {
      tabsKey = tk
      const tab = (label, attempt) => h('button', { type: 'button', role: 'tab', class: `tab ${selectedAttempt === attempt ? 'active' : ''}`, 'aria-selected': String(selectedAttempt === attempt), dataset: { attempt: attempt ?? 'latest' }, onclick: () => { selectedAttempt = attempt; renderDetail() } }, label)
      replace(attemptTabs, tab('latest (live)', null), Array.from({ length: task.attempts }, (_, i) => tab(`attempt ${i + 1}`, i + 1)))
    }
    const key = JSON.stringify([task.task_id, selectedAttempt])
    if (key !== tailKey) {
      if (JSON.parse(tailKey || '[]')[0] !== task.task_id) shownRank = null
      tailKey = key
      ranksInLog = []
      tail?.close()
      tail = logTail(runId, task.task_id, selectedAttempt, {
        ranks: {
          rank: shownRank,
          onChange: (rank) => { shownRank = rank; renderOperatorPanel() },
          onRanks: (list) => { ranksInLog = list; renderOperatorPanel() },
        },
      })
      replace(logBox, tail.el)
    }
    renderOperatorPanel()
  }

  /** The train panel or the gate report of the selected task (for the attempt whose log is shown). */
  function renderOperatorPanel() {
    const task = tasks.find((t) => t.task_id === selectedTask)
    if (!task) return
    const number = selectedAttempt ?? task.attempts
    const attempt = attempts.find((a) => a.task_id === task.task_id && a.attempt === number)
    if (task.operator === 'train') {
      const panel = { task, attempt, declared: trainJobs[task.task_id], ranksInLog, shownRank, onRank: (rank) => tail?.showRank(rank) }
      const { ranks } = trainFacts(panel)
      // Filters for every rank of a multi-rank job, also those that have not written yet.
      if (ranks.length > 1) tail?.knowRanks(ranks.map((r) => r.rank))
      replace(operatorBox, trainPanel(panel))
      clearTimeout(jobPoll)
      if (task.state === 'running') jobPoll = setTimeout(() => self.kick?.(), JOB_POLL_MS)
    } else if (isGateOutputs(task.outputs)) {
      replace(operatorBox, gateReport(task.outputs))
    } else if (isDriftOutputs(task.outputs)) {
      replace(operatorBox, driftReport(task.outputs))
    } else {
      replace(operatorBox)
    }
  }

  /** Mark success / failed: only a finished task, only to the other outcome. */
  function markButtons(task) {
    if (!isTerminal(task.state)) return null
    return ['success', 'failed'].filter((state) => state !== task.state).map((state) => h('button', {
      type: 'button', class: 'small mark-task', dataset: { mark: state },
      title: `set ${task.task_id} to ${state}; failed or upstream_failed tasks downstream of it run again`,
      onclick: (event) => { event.stopPropagation(); markTask(task.task_id, state) },
    }, state === 'success' ? 'Mark success' : 'Mark failed'))
  }

  async function markTask(taskId, state) {
    if (!confirm(`Mark ${taskId} ${state}? Failed tasks downstream of it run again.`)) return
    try {
      const result = await api(`/runs/${enc(runId)}/tasks/${enc(taskId)}/mark`, { method: 'POST', body: { state } })
      message.ok(`${taskId} marked ${result.state} (was ${result.previous_state})${result.cleared.length ? `; cleared ${result.cleared.join(', ')}` : ''}; the run is ${result.run_state}.`)
      await refresh()
    } catch (error) {
      message.error(error)
    }
  }

  async function cancel(event) {
    if (!confirm(`Cancel run ${runId}? Unfinished tasks are stopped.`)) return
    event.currentTarget.disabled = true
    try {
      const result = await api(`/runs/${enc(runId)}/cancel`, { method: 'POST' })
      message.ok(`Run ${result.previous_state === result.state ? `was already ${result.state}` : `cancelled (was ${result.previous_state})`}.`)
      await refresh()
    } catch (error) {
      message.error(error)
    }
  }

  async function clearTask(taskId) {
    if (!confirm(`Clear ${taskId} and everything downstream of it? They run again.`)) return
    try {
      const result = await api(`/runs/${enc(runId)}/clear`, { method: 'POST', body: { task: taskId } })
      message.ok(`Cleared ${result.cleared.join(', ') || 'nothing'}; the run is ${result.state} again.`)
      // A cleared task starts a new attempt: follow it.
      tailKey = ''
      selectedAttempt = null
      await refresh()
    } catch (error) {
      message.error(error)
    }
  }

  // app.js adds kick() (a refresh soon) to this object.
  const self = {
    refresh,
    destroy: () => {
      clearTimeout(jobPoll)
      tail?.close()
    },
  }
  return self
}
