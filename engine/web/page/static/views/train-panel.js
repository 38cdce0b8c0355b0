// The panel of a `train` task on the run page: the executor, the Slurm job id and state, the ranks
// with their hosts (each with a button narrowing the log to that rank), and what training produced
// (metrics, the registered model version).
//
// Where the facts come from, best first:
//   - the attempt's `executor` in the API: {handle, state}, handle being the executor's JobHandle
//     ({executor, jobId} for Slurm, {executor, processes: [{host, pgid}]} for SSH, {executor, pids}
//     locally) and state {executor, job_id?, state?, ranks: [{rank, host}], updated_at};
//   - the task's outputs: `job_id` (Slurm), `job` (the handle, kept when the job failed), `metrics`,
//     `model_uri`, `model_version`;
//   - what the run's DAG version declares (train_jobs of /runs/{run}/attempts): executor, cluster,
//     nodes x tasks_per_node ranks; local ranks run on the attempt's worker;
//   - the log: the ranks whose `[rank N] ` lines the log tail has seen (hosts then unknown).
import { enc } from '../api.js'
import { h } from '../dom.js'
import { fmtTime } from '../format.js'
import { fmtValue, metricsTable } from './metrics.js'

const EXECUTORS = new Set(['local', 'ssh', 'slurm'])

/** What the panel shows, from the attempt's executor info, the task's outputs and the ranks seen in the log. */
export function trainFacts({ task, attempt, declared, ranksInLog }) {
  const outputs = isObject(task.outputs) ? task.outputs : {}
  const info = isObject(attempt?.executor) ? attempt.executor : isObject(task.executor) ? task.executor : {}
  const handle = isObject(info.handle) ? info.handle : isObject(outputs.job) ? outputs.job : {}
  const state = isObject(info.state) ? info.state : {}
  const plan = isObject(declared) ? declared : {}
  const kind = [state.executor, handle.executor, plan.executor].find((k) => EXECUTORS.has(k)) ?? (outputs.job_id !== undefined ? 'slurm' : null)
  const jobId = firstText(state.job_id, handle.jobId, outputs.job_id)
  // Local ranks run on the worker that runs the attempt (its id starts with its host name).
  const workerHost = kind === 'local' && typeof attempt?.worker_id === 'string' ? attempt.worker_id.split(':')[0] || null : null
  const byRank = new Map()
  const add = (rank, host) => {
    if (!Number.isInteger(rank) || rank < 0) return
    const seen = byRank.get(rank)
    if (!seen || (seen.host === null && host)) byRank.set(rank, { rank, host: host || null })
  }
  if (Array.isArray(state.ranks)) for (const r of state.ranks) if (isObject(r)) add(r.rank, typeof r.host === 'string' ? r.host : null)
  const worldSize = Number.isInteger(plan.nodes) ? plan.nodes * (Number.isInteger(plan.tasks_per_node) ? plan.tasks_per_node : 1) : 0
  for (let r = 0; r < Math.min(worldSize, 1024); r++) add(r, workerHost)
  for (const r of ranksInLog ?? []) add(r, workerHost)
  const ranks = [...byRank.values()].sort((a, b) => a.rank - b.rank)
  return {
    kind,
    cluster: firstText(plan.cluster, handle.cluster),
    jobId,
    jobState: firstText(state.state),
    updatedAt: firstText(state.updated_at),
    ranks,
    metrics: isObject(outputs.metrics) ? outputs.metrics : null,
  }
}

/** `declared`: the run's train_jobs entry; `onRank(rank | null)`: narrows the log; `shownRank`: the log's current filter. */
export function trainPanel({ task, attempt, declared, ranksInLog, shownRank, onRank }) {
  const f = trainFacts({ task, attempt, declared, ranksInLog })
  const model = modelLink(isObject(task.outputs) ? task.outputs : {})
  const facts = h('dl', { class: 'facts', id: 'train-facts' },
    h('dt', null, 'Executor'), h('dd', { id: 'train-executor' }, f.kind ?? '—'),
    f.cluster ? [h('dt', null, 'Cluster'), h('dd', { id: 'train-cluster' }, f.cluster)] : null,
    f.kind === 'slurm' || f.jobId !== null ? [
      h('dt', null, 'Slurm job'), h('dd', { id: 'train-job-id', title: f.jobId === null ? 'no job id yet: the job is not submitted, or the attempt ended before' : null }, f.jobId ?? '—'),
      h('dt', null, 'Job state'), h('dd', { id: 'train-job-state' }, f.jobState ?? '—'),
    ] : null,
    f.updatedAt ? [h('dt', null, 'As of'), h('dd', { id: 'train-updated' }, fmtTime(f.updatedAt))] : null,
    model ? [h('dt', null, 'Model'), h('dd', { id: 'train-model' }, model)] : null)
  // One rank writes its lines without a prefix: a filter would have nothing to narrow.
  const filters = f.ranks.length > 1
  const rankRows = f.ranks.length === 0
    ? h('p', { class: 'muted small', id: 'train-no-ranks' }, 'No rank has reported yet.')
    : h('table', { class: 'list compact', id: 'train-ranks' },
      h('thead', null, h('tr', null, h('th', null, 'Rank'), h('th', null, 'Host'), filters ? h('th', null, 'Log') : null)),
      h('tbody', null, f.ranks.map((r) => h('tr', { dataset: { rank: r.rank, host: r.host ?? '' } },
        h('td', null, String(r.rank)),
        h('td', { class: 'rank-host' }, r.host ?? h('span', { class: 'muted', title: 'the executor has not said where this rank runs' }, 'unknown')),
        filters && h('td', null, h('button', {
          type: 'button', class: `small tab ${shownRank === r.rank ? 'active' : ''}`, dataset: { showRank: r.rank },
          title: shownRank === r.rank ? 'show every rank\'s lines again' : `show only rank ${r.rank}'s lines in the log`,
          onclick: () => onRank(shownRank === r.rank ? null : r.rank),
        }, shownRank === r.rank ? 'all lines' : 'only this rank'))))))
  return h('section', { class: 'train-panel', id: 'train-panel', dataset: { executor: f.kind ?? '' } },
    h('h3', null, 'Training'), facts,
    h('h3', null, `Ranks${f.ranks.length ? ` (${f.ranks.length})` : ''}`), rankRows,
    f.metrics ? [h('h3', null, 'Metrics'), metricsTable(f.metrics, 'train-metrics')] : null)
}

/** models:/NAME/VERSION (or model_version with a model URI naming the model) -> a link to the Models view. */
function modelLink(outputs) {
  const uri = typeof outputs.model_uri === 'string' ? outputs.model_uri : null
  const match = uri ? /^models:\/([a-z][a-z0-9_]{0,63})\/([1-9][0-9]{0,9})$/.exec(uri) : null
  if (match) return h('a', { href: `#/models/${enc(match[1])}?version=${match[2]}`, id: 'train-model-link' }, `${match[1]} v${match[2]}`)
  if (uri) return h('code', { title: 'the model file among the collected artifacts (no model_name: not registered)' }, uri)
  return outputs.model_version !== undefined ? `version ${fmtValue(outputs.model_version)}` : null
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function firstText(...values) {
  for (const v of values) if ((typeof v === 'string' && v !== '') || typeof v === 'number') return String(v)
  return null
}
