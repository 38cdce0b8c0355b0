// Materialized intervals of a feature view on a time axis, one lane per definition version (the
// current one on top): a bar per interval, and the gaps between intervals drawn as hatched red
// stretches so that a missed day stands out.
import { s } from './dom.js'
import { fmtShort, fmtTime } from './format.js'

const LANE_H = 26
const LABEL_W = 46
const AXIS_H = 22

/** intervals: [{definition_version, start, end, rows}], gaps: [{definition_version, start, end}]. */
export function intervalTimeline(intervals, gaps, { width = 600, current } = {}) {
  const times = [...intervals, ...gaps].flatMap((i) => [Date.parse(i.start), Date.parse(i.end)])
  const min = Math.min(...times)
  const max = Math.max(...times)
  const span = Math.max(1, max - min)
  const versions = [...new Set([...intervals, ...gaps].map((i) => i.definition_version))].sort((a, b) => b - a)
  const plotW = Math.max(120, width - LABEL_W - 8)
  const x = (iso) => LABEL_W + ((Date.parse(iso) - min) / span) * plotW
  const laneY = (version) => AXIS_H + versions.indexOf(version) * LANE_H
  const height = AXIS_H + versions.length * LANE_H + 4

  const ticks = [min, min + span / 2, max].map((t, i) => {
    const iso = new Date(t).toISOString()
    return s('g', { class: 'tick' },
      s('line', { x1: x(iso), x2: x(iso), y1: AXIS_H - 4, y2: height }),
      s('text', { x: x(iso), y: 12, 'text-anchor': i === 0 ? 'start' : i === 2 ? 'end' : 'middle' }, fmtShort(iso)))
  })
  const lanes = versions.map((v) => s('g', { class: `tl-lane ${v === current ? 'current' : ''}` },
    s('rect', { class: 'tl-band', x: 0, y: laneY(v), width: LABEL_W + plotW, height: LANE_H - 4 }),
    s('text', { class: 'tl-label', x: 4, y: laneY(v) + 15 }, `def ${v}`)))
  const bars = intervals.map((i) => s('rect', {
    class: 'tl-bar',
    x: x(i.start),
    y: laneY(i.definition_version) + 3,
    width: Math.max(2, x(i.end) - x(i.start) - 1),
    height: LANE_H - 10,
    dataset: { start: i.start, end: i.end, version: i.definition_version },
  }, s('title', null, `${fmtTime(i.start)} → ${fmtTime(i.end)}\ndefinition ${i.definition_version} · ${i.rows} rows`)))
  const holes = gaps.map((g) => s('rect', {
    class: 'tl-gap',
    x: x(g.start),
    y: laneY(g.definition_version) + 1,
    width: Math.max(3, x(g.end) - x(g.start)),
    height: LANE_H - 6,
    dataset: { start: g.start, end: g.end, version: g.definition_version },
  }, s('title', null, `not materialized: ${fmtTime(g.start)} → ${fmtTime(g.end)} (definition ${g.definition_version})`)))
  return s('svg', { class: 'timeline', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'materialized intervals' },
    s('defs', null, s('pattern', { id: 'tl-hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' }, s('rect', { class: 'tl-hatch-bg', width: 6, height: 6 }), s('line', { class: 'tl-hatch-line', x1: 0, y1: 0, x2: 0, y2: 6 }))),
    s('g', null, ticks), s('g', null, lanes), s('g', null, bars), s('g', null, holes))
}
