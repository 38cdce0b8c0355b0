// A dataset version's lineage as an SVG graph laid out by dagre (left to right: sources first, the
// version itself last, the files, URLs or connections its ingests read first), drawn like the DAG graph. Names come from data: they are only ever set as text.
import dagre from './vendor/dagre.js'
import { h, s } from './dom.js'

const CHAR_W = 7.4
const NODE_H = 46

/** nodes: [{id, kind: 'dataset'|'feature_view'|'model'|'source', name, version?, produced_kind?, rows?, missing?}], edges: [{from, to}]. */
export function lineageGraph(nodes, edges, { current, onSelect } = {}) {
  const g = new dagre.graphlib.Graph()
  g.setGraph({ rankdir: 'LR', nodesep: 16, ranksep: 54, marginx: 12, marginy: 12 })
  g.setDefaultEdgeLabel(() => ({}))
  const label = (n) => (n.kind === 'dataset' ? `${n.name}@${n.version}` : n.name)
  const detail = (n) => {
    if (n.kind === 'source') return 'source'
    if (n.kind === 'feature_view') return `feature view · definition ${n.version}`
    if (n.kind === 'model') return `model · version ${n.version}`
    if (n.missing) return 'not found'
    return `${n.produced_kind ?? 'dataset'}${n.rows !== undefined ? ` · ${n.rows} row${n.rows === 1 ? '' : 's'}` : ''}`
  }
  for (const n of nodes) g.setNode(n.id, { width: Math.min(320, Math.max(110, Math.max(label(n).length, detail(n).length) * CHAR_W + 30)), height: NODE_H })
  for (const e of edges) if (g.hasNode(e.from) && g.hasNode(e.to)) g.setEdge(e.from, e.to)
  dagre.layout(g)
  const { width, height } = g.graph()

  const edgeEls = g.edges().map((e) => {
    const d = g.edge(e).points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ')
    return s('path', { class: 'edge', d, 'marker-end': 'url(#lineage-arrow)', dataset: { from: e.v, to: e.w } })
  })
  const nodeEls = nodes.map((n) => {
    const inert = n.missing || n.kind === 'source' || n.kind === 'model'
    const box = g.node(n.id)
    const x = box.x - box.width / 2
    const y = box.y - box.height / 2
    const classes = ['node', 'lineage-node', `kind-${n.kind}`, n.id === current ? 'current' : '', n.missing ? 'missing' : ''].filter(Boolean).join(' ')
    const el = s('g', { class: classes, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`, tabindex: inert ? undefined : 0, role: inert ? undefined : 'link', dataset: { id: n.id, kind: n.kind } },
      s('title', null, `${label(n)}\n${detail(n)}`),
      s('rect', { class: 'node-box', width: box.width, height: box.height, rx: n.kind === 'feature_view' ? 14 : 6 }),
      s('rect', { class: 'node-state', x: 0, y: 0, width: 6, height: box.height, rx: 3 }),
      s('text', { class: 'node-label', x: 14, y: 20 }, clip(label(n), box.width)),
      s('text', { class: 'node-op', x: 14, y: 36 }, clip(detail(n), box.width)))
    if (!inert) {
      const select = () => onSelect?.(n)
      el.addEventListener('click', select)
      el.addEventListener('keydown', (event) => (event.key === 'Enter' || event.key === ' ') && select())
    }
    return el
  })
  const svg = s('svg', { class: 'dag-graph lineage-graph', width: Math.ceil(width), height: Math.ceil(height), viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`, role: 'img', 'aria-label': 'lineage graph' },
    s('defs', null, s('marker', { id: 'lineage-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }))),
    s('g', null, edgeEls),
    s('g', null, nodeEls))
  return h('div', { class: 'graph-scroll' }, svg)
}

function clip(text, width) {
  const max = Math.floor((width - 20) / CHAR_W)
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}
