// The status page: a hash router over three views (DAG list, DAG, run) and one refresh loop that
// asks the current view to update itself from the API every POLL_MS without reloading the page.
import { loadSession, logout } from './api.js'
import { replace, h } from './dom.js'
import { dagListView } from './views/dag-list.js'
import { dagView } from './views/dag.js'
import { runView } from './views/run.js'

const POLL_MS = 1500

const root = document.getElementById('view')
const banner = document.getElementById('banner')
const live = document.getElementById('live')

let current
let timer
let generation = 0

function route() {
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?')
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent)
  const params = new URLSearchParams(query)
  if (parts[0] === 'dags' && parts[1]) return { name: 'dag', args: { dagId: parts[1], params } }
  if (parts[0] === 'runs' && parts[1]) return { name: 'run', args: { runId: parts[1], params } }
  return { name: 'dags', args: { params } }
}

const VIEWS = { dags: dagListView, dag: dagView, run: runView }

async function show(session) {
  current?.destroy?.()
  clearTimeout(timer)
  const mine = ++generation
  const { name, args } = route()
  const container = replace(root, h('p', { class: 'muted' }, 'Loading…'))
  current = VIEWS[name]({ ...args, session, container, navigate: (hash) => (location.hash = hash) })
  const tick = async () => {
    if (mine !== generation) return
    if (document.visibilityState !== 'hidden') {
      try {
        await current.refresh()
        setOffline(false)
      } catch (error) {
        if (mine === generation) setOffline(error)
      }
    }
    if (mine === generation) timer = setTimeout(tick, POLL_MS)
  }
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
  window.addEventListener('hashchange', () => void show(session))
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') void current?.refresh().catch(() => undefined)
  })
  await show(session)
}

main().catch((error) => {
  banner.textContent = `The page could not start: ${error.message}`
  banner.hidden = false
})

