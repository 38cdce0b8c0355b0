// The DAG as an SVG graph laid out by dagre (left to right). Layout happens once per definition;
// live updates only change each node's state class.
import dagre from './vendor/dagre.js'
import { h, s } from './dom.js'

const CHAR_W = 7.4
const NODE_H = 34

export function dagGraph(tasks, { onSelect } = {}) {
  const g = new dagre.graphlib.Graph()
  g.setGraph({ rankdir: 'LR', nodesep: 18, ranksep: 48, marginx: 12, marginy: 12 })
  g.setDefaultEdgeLabel(() => ({}))
  for (const task of tasks) {
    const width = Math.max(90, Math.max(task.task_id.length, task.operator.length + 2) * CHAR_W + 34)
    g.setNode(task.task_id, { width, height: NODE_H + 12 })
  }
  for (const task of tasks) for (const up of task.depends_on) if (g.hasNode(up)) g.setEdge(up, task.task_id)
  dagre.layout(g)
  const { width, height } = g.graph()

  const edges = g.edges().map((e) => {
    const points = g.edge(e).points
    const d = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ')
    return s('path', { class: 'edge', d, 'marker-end': 'url(#arrow)', dataset: { from: e.v, to: e.w } })
  })
  const nodes = new Map()
  const nodeEls = tasks.map((task) => {
    const n = g.node(task.task_id)
    const x = n.x - n.width / 2
    const y = n.y - n.height / 2
    const title = s('title', null, task.task_id)
    const el = s('g', { class: 'node st-none', transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`, tabindex: 0, role: 'button', dataset: { task: task.task_id, state: '' } },
      title,
      s('rect', { class: 'node-box', width: n.width, height: n.height, rx: 6 }),
      s('rect', { class: 'node-state', x: 0, y: 0, width: 6, height: n.height, rx: 3 }),
      s('text', { class: 'node-label', x: 14, y: 19 }, task.task_id),
      s('text', { class: 'node-op', x: 14, y: 35 }, task.operator))
    const select = () => onSelect?.(task.task_id)
    el.addEventListener('click', select)
    el.addEventListener('keydown', (event) => (event.key === 'Enter' || event.key === ' ') && select())
    nodes.set(task.task_id, { el, title })
    return el
  })
  const svg = s('svg', { class: 'dag-graph', width: Math.ceil(width), height: Math.ceil(height), viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`, role: 'img', 'aria-label': 'task graph' },
    s('defs', null, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }))),
    s('g', null, edges),
    s('g', null, nodeEls))

  return {
    el: h('div', { class: 'graph-scroll' }, svg),
    /** states: task id -> state (missing: no run yet). */
    setStates(states) {
      for (const [taskId, { el, title }] of nodes) {
        const state = states?.[taskId] ?? ''
        if (el.dataset.state === state) continue
        el.dataset.state = state
        el.setAttribute('class', `node st-${state || 'none'}`)
        title.textContent = state ? `${taskId}: ${state}` : taskId
      }
    },
  }
}
