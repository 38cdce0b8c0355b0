// The status page: a hash router over its views (DAGs, runs, datasets, feature views, models). Each view re-reads what it
// shows when the server's live-state stream (/api/v1/events, narrowed to the view's DAG or run) says
// something changed, and every FALLBACK_MS anyway; while the stream is down it polls every OFFLINE_MS.
import { loadSession, logout } from './api.js'
import { replace, h } from './dom.js'
import { getZoneMode, setZoneMode } from './format.js'
import { dagListView } from './views/dag-list.js'
import { dagView } from './views/dag.js'
import { runView } from './views/run.js'
import { datasetListView, datasetView } from './views/datasets.js'
import { featureView, featureViewListView } from './views/feature-views.js'
import { modelListView, modelView } from './views/models.js'

const FALLBACK_MS = 15_000
const OFFLINE_MS = 1500
/** Changes arriving in a burst cause one refresh, at most one every MIN_GAP_MS. */
const MIN_GAP_MS = 300

const root = document.getElementById('view')
const banner = document.getElementById('banner')
const live = document.getElementById('live')

let current
let timer
let events
let generation = 0

function route() {
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?')
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent)
  const params = new URLSearchParams(query)
  if (parts[0] === 'dags' && parts[1]) return { name: 'dag', args: { dagId: parts[1], params }, interest: { dag: parts[1] } }
  if (parts[0] === 'runs' && parts[1]) return { name: 'run', args: { runId: parts[1], params }, interest: { run: parts[1] } }
  // Datasets and feature views change when tasks finish: the unnarrowed stream says when.
  if (parts[0] === 'datasets') return parts[1] ? { name: 'dataset', args: { name: parts[1], params }, interest: {} } : { name: 'datasets', args: { params }, interest: {} }
  if (parts[0] === 'features') return parts[1] ? { name: 'featureView', args: { name: parts[1], params }, interest: {} } : { name: 'featureViews', args: { params }, interest: {} }
  if (parts[0] === 'models') return parts[1] ? { name: 'model', args: { name: parts[1], params }, interest: {} } : { name: 'models', args: { params }, interest: {} }
  return { name: 'dags', args: { params }, interest: {} }
}

const VIEWS = { dags: dagListView, dag: dagView, run: runView, datasets: datasetListView, dataset: datasetView, featureViews: featureViewListView, featureView, models: modelListView, model: modelView }

async function show(session) {
  current?.destroy?.()
  clearTimeout(timer)
  events?.close()
  const mine = ++generation
  const { name, args, interest } = route()
  const section = name.startsWith('dataset') ? 'nav-datasets' : name.startsWith('featureView') ? 'nav-features' : name.startsWith('model') ? 'nav-models' : 'nav-dags'
  for (const link of document.querySelectorAll('.sections a')) {
    if (link.id === section) link.setAttribute('aria-current', 'page')
    else link.removeAttribute('aria-current')
  }
  const container = replace(root, h('p', { class: 'muted' }, 'Loading…'))
  current = VIEWS[name]({ ...args, session, container, navigate: (hash) => (location.hash = hash) })
  let streaming = false
  let running = false
  let again = false
  let lastRun = 0

  const tick = async () => {
    if (mine !== generation) return
    if (running) {
      again = true
      return
    }
    running = true
    clearTimeout(timer)
    try {
      if (document.visibilityState !== 'hidden') {
        lastRun = Date.now()
        try {
          await current.refresh()
          setOffline(false)
        } catch (error) {
          if (mine === generation) setOffline(error)
        }
      }
    } finally {
      running = false
    }
    if (mine !== generation) return
    if (again) {
      again = false
      kick()
    } else timer = setTimeout(tick, streaming ? FALLBACK_MS : OFFLINE_MS)
  }
  const kick = () => {
    if (mine !== generation) return
    if (running) {
      again = true
      return
    }
    clearTimeout(timer)
    timer = setTimeout(tick, Math.max(0, lastRun + MIN_GAP_MS - Date.now()))
  }

  const query = new URLSearchParams(interest).toString()
  events = new EventSource(`/api/v1/events${query ? `?${query}` : ''}`)
  events.addEventListener('ready', () => {
    streaming = true
    live.classList.remove('off')
    kick() // whatever changed before the stream was listening
  })
  events.addEventListener('states', kick)
  events.addEventListener('dags', kick)
  events.addEventListener('error', () => {
    // The browser reconnects by itself; meanwhile the page polls.
    streaming = false
    live.classList.add('off')
    kick()
  })
  current.kick = kick
  await tick()
}

function setOffline(error) {
  live.classList.toggle('off', Boolean(error))
  if (!error) {
    banner.hidden = true
    return
  }
  banner.textContent = error.status ? `The last update failed: ${error.message}` : 'The server cannot be reached; retrying…'
  banner.hidden = false
}

async function main() {
  const session = await loadSession()
  document.getElementById('who').textContent = `${session.name} (${session.role})`
  document.getElementById('logout').addEventListener('click', () => void logout())
  const zone = document.getElementById('zone-toggle')
  const showZone = () => (zone.textContent = getZoneMode() === 'utc' ? 'Times: UTC' : 'Times: local')
  showZone()
  zone.addEventListener('click', () => {
    setZoneMode(getZoneMode() === 'utc' ? 'local' : 'utc')
    showZone()
    void show(session)
  })
  window.addEventListener('hashchange', () => void show(session))
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') current?.kick?.()
  })
  await show(session)
}

main().catch((error) => {
  banner.textContent = `The page could not start: ${error.message}`
  banner.hidden = false
})
