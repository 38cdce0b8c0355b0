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

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December']
const PRESETS = {
  '@once': 'once',
  '@hourly': 'every hour, on the hour',
  '@daily': 'every day at 00:00',
  '@midnight': 'every day at 00:00',
  '@weekly': 'every Sunday at 00:00',
  '@monthly': 'on the 1st of every month at 00:00',
  '@yearly': 'every year on 1 January at 00:00',
  '@annually': 'every year on 1 January at 00:00',
}
const num = (text) => (/^\d+$/.test(text) ? Number(text) : undefined)
const ordinal = (n) => `${n}${n % 10 === 1 && n !== 11 ? 'st' : n % 10 === 2 && n !== 12 ? 'nd' : n % 10 === 3 && n !== 13 ? 'rd' : 'th'}`

function weekdays(field) {
  if (field === '1-5') return 'on weekdays'
  if (field === '0,6' || field === '6,0') return 'on weekends'
  const days = field.split(',').map((d) => num(d))
  if (days.some((d) => d === undefined || d > 7)) return undefined
  const names = days.map((d) => WEEKDAYS[d % 7])
  return `every ${names.length === 1 ? names[0] : names.slice(0, -1).join(', ') + ' and ' + names.at(-1)}`
}

/** A preset or a simple 5-field cron in words; undefined when it is not simple enough to say well. */
export function describeSchedule(schedule) {
  if (!schedule) return 'manual runs only'
  const text = schedule.trim()
  if (text.startsWith('@')) return PRESETS[text]
  const fields = text.split(/\s+/)
  if (fields.length !== 5) return undefined
  const [minute, hour, dom, month, dow] = fields
  const m = num(minute)
  const step = /^\*\/(\d+)$/
  if (text === '* * * * *') return 'every minute'
  if (dom !== '*' || month !== '*') {
    if (m === undefined || num(hour) === undefined || dow !== '*' || num(dom) === undefined) return undefined
    const at = `at ${pad(num(hour))}:${pad(m)}`
    if (month === '*') return `on the ${ordinal(num(dom))} of every month ${at}`
    if (num(month) !== undefined && num(month) >= 1 && num(month) <= 12) return `every year on ${num(dom)} ${MONTHS[num(month) - 1]} ${at}`
    return undefined
  }
  if (hour === '*' && dow === '*') {
    if (step.test(minute)) return `every ${minute.match(step)[1]} minutes`
    if (m !== undefined) return m === 0 ? 'every hour, on the hour' : `every hour at minute ${m}`
    return undefined
  }
  if (m === undefined) return undefined
  if (step.test(hour) && dow === '*') return `every ${hour.match(step)[1]} hours at minute ${m}`
  const hours = hour.split(',').map((x) => num(x))
  if (hours.some((x) => x === undefined || x > 23)) return undefined
  const at = `at ${hours.map((x) => `${pad(x)}:${pad(m)}`).join(', ')}`
  if (dow === '*') return `every day ${at}`
  const days = weekdays(dow)
  return days ? `${days} ${at}` : undefined
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
