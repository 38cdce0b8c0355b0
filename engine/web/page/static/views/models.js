// Models: the list (latest, production and canary versions), and one model: its versions with stage,
// traffic share, metrics and lineage, the chosen version in detail, and the audit log of stage
// changes (the sections of model-sections.js), the rollout history as timelines (model-rollouts.js).
import { api, enc } from '../api.js'
import { h, replace } from '../dom.js'
import { fmtTime, relative } from '../format.js'
import { MODEL_SECTIONS } from './model-sections.js'
import { shareText, stageBadge } from './model-parts.js'

const ROLLOUT_FOLLOW_MS = 2000

export function modelListView({ container }) {
  const table = h('div', { id: 'model-table' })
  replace(container,
    h('div', { class: 'page-head' }, h('h1', null, 'Models'),
      h('div', { class: 'meta' }, h('span', null, 'Versions registered by ', h('code', null, 'train'), ' with ', h('code', null, 'model_name'), ', or with ', h('code', null, 'cairn models register'), '.'))),
    table)
  let key = ''

  async function refresh() {
    const { models } = await api('/models')
    const k = JSON.stringify(models)
    if (k === key) return
    key = k
    if (models.length === 0) {
      replace(table, h('p', { class: 'muted', id: 'no-models' }, 'No models yet. A train task with model_name, or `cairn models register NAME FILE.onnx`, makes one.'))
      return
    }
    const version = (m, v) => (v === null ? h('span', { class: 'muted' }, '—') : h('a', { href: `#/models/${enc(m.name)}?version=${v}` }, `v${v}`))
    replace(table, h('div', { class: 'table-scroll' }, h('table', { class: 'list' },
      h('thead', null, h('tr', null, ['Model', 'Latest', 'Production', 'Canary', 'Created'].map((t) => h('th', null, t)))),
      h('tbody', null, models.map((m) => h('tr', { dataset: { model: m.name } },
        h('td', null, h('a', { class: 'dag-link', href: `#/models/${enc(m.name)}` }, m.name)),
        h('td', null, version(m, m.latest_version)),
        h('td', { class: 'production' }, version(m, m.production)),
        h('td', { class: 'canary' }, version(m, m.canary)),
        h('td', { title: fmtTime(m.created_at) }, relative(m.created_at))))))))
  }

  return { refresh }
}

export function modelView({ container, name, params, navigate }) {
  const head = h('div', { class: 'page-head' })
  const cards = MODEL_SECTIONS.map((section) => {
    const title = h('h2')
    const body = h('div', { class: 'section-body' })
    return { section, title, body, el: h('section', { class: 'card', id: section.id }, title, body) }
  })
  replace(container, h('nav', { class: 'crumbs' }, h('a', { href: '#/models' }, 'Models'), ' / ', name), head, cards.map((c) => c.el))
  const wanted = Number(params.get('version')) || null
  let key = ''
  // A rollout moves without task state changes (shares, step figures): while one runs, look again soon.
  let followTimer
  let gone = false

  async function refresh() {
    const model = await api(`/models/${enc(name)}`)
    clearTimeout(followTimer)
    if (!gone && model.rollouts?.some((r) => r.status === 'running')) followTimer = setTimeout(() => refresh().catch(() => undefined), ROLLOUT_FOLLOW_MS)
    const version = model.versions.find((v) => v.version === wanted) ?? model.versions[0]
    const k = JSON.stringify([model, version.version])
    if (k === key) return
    key = k
    renderHead(model)
    const ctx = { version, navigate }
    for (const card of cards) {
      const content = card.section.render(model, ctx)
      card.el.hidden = content === null
      if (content === null) continue
      card.title.textContent = card.section.title(model, ctx)
      replace(card.body, content)
    }
  }

  function renderHead(model) {
    const inStage = (stage) => model.versions.find((v) => v.stage === stage)
    const production = inStage('production')
    const canary = inStage('canary')
    replace(head,
      h('h1', null, model.name, ' ', h('span', { class: 'pill pill-active', id: 'model-latest' }, `latest v${model.latest_version}`)),
      h('div', { class: 'meta', id: 'model-meta' },
        h('span', { id: 'model-production' }, 'production ', production ? [stageBadge('production'), ` v${production.version} · `, shareText(production.traffic_share)] : '—'),
        h('span', { id: 'model-canary' }, 'canary ', canary ? [stageBadge('canary'), ` v${canary.version} · `, shareText(canary.traffic_share)] : '—'),
        h('span', null, `${model.versions.length} version${model.versions.length === 1 ? '' : 's'}`)))
  }

  return { refresh, destroy: () => { gone = true; clearTimeout(followTimer) } }
}
