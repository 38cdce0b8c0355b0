// Times, durations, states and schedules as people read them.

export const TASK_STATES = ['pending', 'queued', 'running', 'up_for_retry', 'success', 'failed', 'upstream_failed', 'skipped', 'cancelled']
const TERMINAL = new Set(['success', 'failed', 'upstream_failed', 'skipped', 'cancelled', 'lost'])
export const isTerminal = (state) => TERMINAL.has(state)

const pad = (n, w = 2) => String(n).padStart(w, '0')

/** Where times are shown: the browser's zone ('local') or 'utc'; the reader's choice, kept across visits. */
const ZONE_KEY = 'cairn.zone'
let zoneMode = (() => {
  try {
    return localStorage.getItem(ZONE_KEY) === 'utc' ? 'utc' : 'local'
  } catch {
    return 'local'
  }
})()
export const getZoneMode = () => zoneMode
export function setZoneMode(mode) {
  zoneMode = mode === 'utc' ? 'utc' : 'local'
  try {
    localStorage.setItem(ZONE_KEY, zoneMode)
  } catch {
    // Private windows may refuse storage: the choice then lasts for this page only.
  }
}

/** The local zone's short name at that instant ("CET", "CEST", "GMT+5:30"). */
function localZoneName(d) {
  const part = new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName')
  return part?.value ?? 'local'
}

/** A time with its zone, e.g. 2026-01-01 02:00:05 CET (or ... UTC after the switch). */
export function fmtTime(iso) {
  if (!iso) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return '—'
  if (zoneMode === 'utc') {
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`
  }
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${localZoneName(d)}`
}

/** Time of day with milliseconds, e.g. 14:03:07.125, in the chosen zone (log line timestamps). */
export function fmtClock(iso) {
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  return zoneMode === 'utc'
    ? `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`
    : `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
}

/** A short date for grid columns, e.g. 03-14 02:00, in the chosen zone. */
export function fmtShort(iso) {
  if (!iso) return ''
  const d = new Date(iso)
  return zoneMode === 'utc'
    ? `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`
    : `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`
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
