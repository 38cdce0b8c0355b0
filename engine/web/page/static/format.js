// Times, durations, states and schedules as people read them.

export const TASK_STATES = ['pending', 'queued', 'running', 'up_for_retry', 'success', 'failed', 'upstream_failed', 'skipped', 'cancelled']
const TERMINAL = new Set(['success', 'failed', 'upstream_failed', 'skipped', 'cancelled', 'lost'])
export const isTerminal = (state) => TERMINAL.has(state)

const pad = (n, w = 2) => String(n).padStart(w, '0')

/** Local time, e.g. 2026-01-01 02:00:05. */
export function fmtTime(iso) {
  if (!iso) return '—'
  const d = new Date(iso)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—'
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`
  const sec = ms / 1000
  if (sec < 60) return `${sec < 10 ? sec.toFixed(1) : Math.round(sec)} s`
  const min = Math.floor(sec / 60)
  if (min < 60) return `${min} min ${Math.round(sec % 60)} s`
  const hours = Math.floor(min / 60)
  if (hours < 48) return `${hours} h ${min % 60} min`
  return `${Math.floor(hours / 24)} d ${hours % 24} h`
}

export function between(startIso, endIso) {
  if (!startIso) return null
  return (endIso ? new Date(endIso) : new Date()).getTime() - new Date(startIso).getTime()
}

/** "in 5 min", "3 h ago". */
export function relative(iso, now = Date.now()) {
  if (!iso) return ''
  const diff = new Date(iso).getTime() - now
  if (Math.abs(diff) < 5000) return 'now'
  const text = fmtDuration(Math.abs(diff)).replace(/ \d+ (s|min)$/, '')
  return diff > 0 ? `in ${text}` : `${text} ago`
}

/** Tasks upstream first (file order among equals); cycles cannot happen in a loaded DAG. */
export function dependencyOrder(tasks) {
  const byId = new Map(tasks.map((t) => [t.task_id, t]))
  const done = new Set()
  const out = []
  const visit = (task) => {
    if (done.has(task.task_id)) return
    done.add(task.task_id)
    for (const up of task.depends_on ?? []) if (byId.has(up)) visit(byId.get(up))
    out.push(task)
  }
  for (const task of tasks) visit(task)
  return out
}
