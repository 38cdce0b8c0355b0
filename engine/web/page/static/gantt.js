// Gantt chart of a run's task attempts (SVG): one row per task, one bar per attempt from its
// started_at to its ended_at (still running: to now), with the time it waited in the queue shown faint.
import { s } from './dom.js'
import { fmtDuration, fmtTime } from './format.js'

const ROW_H = 24
const LABEL_W = 170
const AXIS_H = 22

export function ganttChart(taskIds, attempts, { width = 900, now = Date.now(), onSelect, selected } = {}) {
  const times = attempts.flatMap((a) => [a.queued_at, a.started_at, a.ended_at]).filter(Boolean).map((t) => new Date(t).getTime())
  const running = attempts.some((a) => !a.ended_at)
  if (times.length === 0) return null
  const start = Math.min(...times)
  const end = Math.max(...times, running ? now : 0, start + 1000)
  const plotW = Math.max(200, width - LABEL_W - 16)
  const x = (t) => LABEL_W + ((t - start) / (end - start)) * plotW
  const height = AXIS_H + taskIds.length * ROW_H + 6

  const ticks = []
  const step = niceStep((end - start) / 6)
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) {
    ticks.push(s('g', { class: 'tick' },
      s('line', { x1: x(t), x2: x(t), y1: AXIS_H - 4, y2: height }),
      s('text', { x: x(t), y: AXIS_H - 8, 'text-anchor': 'middle' }, `+${fmtDuration(t - start)}`)))
  }
  const rows = taskIds.map((taskId, i) => {
    const y = AXIS_H + i * ROW_H
    const bars = attempts.filter((a) => a.task_id === taskId).flatMap((a) => {
      const began = a.started_at ? new Date(a.started_at).getTime() : undefined
      const finished = a.ended_at ? new Date(a.ended_at).getTime() : now
      const queued = a.queued_at ? new Date(a.queued_at).getTime() : undefined
      const out = []
      if (queued !== undefined && (began ?? finished) > queued) {
        out.push(s('rect', { class: 'gantt-wait', x: x(queued), y: y + 8, width: Math.max(1, x(began ?? finished) - x(queued)), height: ROW_H - 16 }))
      }
      if (began !== undefined) {
        const label = `${taskId} attempt ${a.attempt}: ${a.state}\n${fmtTime(a.started_at)} → ${a.ended_at ? fmtTime(a.ended_at) : 'running'} (${fmtDuration(finished - began)})${a.message ? `\n${a.message}` : ''}`
        const bar = s('rect', {
          class: `gantt-bar st-${a.state}`,
          x: x(began), y: y + 4, width: Math.max(4, x(finished) - x(began)), height: ROW_H - 8, rx: 3,
          dataset: { task: taskId, attempt: a.attempt, state: a.state },
        }, s('title', null, label))
        bar.addEventListener('click', () => onSelect?.(taskId, a.attempt))
        out.push(bar)
      }
      return out
    })
    const row = s('g', { class: `gantt-row ${taskId === selected ? 'selected' : ''}`, dataset: { task: taskId } },
      s('rect', { class: 'gantt-band', x: 0, y, width: LABEL_W + plotW + 8, height: ROW_H }),
      s('text', { class: 'gantt-label', x: 6, y: y + 16 }, taskId.length > 24 ? taskId.slice(0, 23) + '…' : taskId),
      bars)
    row.querySelector('.gantt-label').addEventListener('click', () => onSelect?.(taskId))
    return row
  })
  return s('svg', { class: 'gantt', width: LABEL_W + plotW + 8, height, viewBox: `0 0 ${LABEL_W + plotW + 8} ${height}`, role: 'img', 'aria-label': 'timeline of task attempts' },
    s('g', { class: 'ticks' }, ticks), rows)
}

function niceStep(ms) {
  const steps = [100, 250, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000, 86_400_000]
  return steps.find((x) => x >= ms) ?? 86_400_000
}
