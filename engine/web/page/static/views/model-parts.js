// Small pieces of the Models view: a version's stage, traffic share, lineage and who changed it.
// Every name comes from the registry (or from a run's ids) and is set as text only.
import { enc } from '../api.js'
import { h } from '../dom.js'
import { prunedRun } from './common.js'

export function stageBadge(stage) {
  return h('span', { class: `badge stage-${/^[a-z]+$/.test(stage) ? stage : 'unknown'}`, dataset: { stage } }, stage)
}

/** 0..1 -> "10 %"; nothing for a version that serves no traffic. */
export function shareText(share) {
  if (typeof share !== 'number' || share <= 0) return h('span', { class: 'muted' }, '—')
  return `${Number((share * 100).toFixed(1))} %`
}

export function runTaskLink(run, task, attempt, pruned = false) {
  if (typeof run !== 'string' || run === '') return null
  if (pruned) return prunedRun(task ? `${run} / ${task}` : run, 'lineage-run-pruned')
  const href = typeof task === 'string' && task !== '' ? `#/runs/${enc(run)}?task=${enc(task)}` : `#/runs/${enc(run)}`
  return h('a', { href, class: 'lineage-run' }, run, task ? ` / ${task}` : '', Number.isInteger(attempt) ? ` (attempt ${attempt})` : '')
}

export function datasetLink(dataset) {
  if (!dataset || typeof dataset.name !== 'string') return null
  const version = Number.isInteger(dataset.version) ? dataset.version : null
  return h('a', { href: `#/datasets/${enc(dataset.name)}${version ? `?version=${version}` : ''}`, class: 'lineage-dataset' }, dataset.name, version ? `@${version}` : '')
}

export function featureViewLinks(views) {
  if (!Array.isArray(views)) return []
  return views.filter((v) => v && typeof v.feature_view === 'string').map((v) =>
    h('a', { href: `#/features/${enc(v.feature_view)}`, class: 'lineage-feature-view', dataset: { featureView: v.feature_view } },
      v.feature_view, Number.isInteger(v.definition_version) ? ` v${v.definition_version}` : ''))
}

/** A version's lineage as a list: run and task, DAG version, training set, feature views. */
export function lineageList(lineage, { compact = false } = {}) {
  const l = lineage && typeof lineage === 'object' ? lineage : {}
  const views = featureViewLinks(l.feature_views)
  const items = [
    l.run ? h('li', { class: 'lineage-made-by' }, compact ? null : h('span', { class: 'muted' }, 'trained by '), runTaskLink(l.run, l.task, compact ? undefined : l.attempt, l.run_pruned === true)) : null,
    !compact && Number.isInteger(l.dag_version) ? h('li', null, h('span', { class: 'muted' }, 'DAG version '), String(l.dag_version)) : null,
    l.dataset ? h('li', null, h('span', { class: 'muted' }, compact ? 'data ' : 'training set '), datasetLink(l.dataset)) : null,
    views.length ? h('li', null, h('span', { class: 'muted' }, 'features '), views.flatMap((a, i) => (i ? [', ', a] : [a]))) : null,
  ].filter(Boolean)
  if (items.length === 0) return h('span', { class: 'muted' }, compact ? '—' : 'Registered from a file: no lineage.')
  return h('ul', { class: 'lineage-list' }, items)
}

/** Who made a stage change: a user, an API token, or a run's task. */
export function actorText(actor) {
  if (!actor || typeof actor !== 'object') return '—'
  if (typeof actor.run === 'string') return ['run ', runTaskLink(actor.run, actor.task)]
  if (typeof actor.user === 'string') return `user ${actor.user}`
  if (typeof actor.token === 'string') return `token ${actor.token}`
  return JSON.stringify(actor)
}
