// Per-rank filters for a task log. When a job has more than one rank, `train` writes each rank's
// lines as `[rank N] text`; a line with that prefix is tagged with its rank (data-rank), and a row
// of buttons (all ranks, rank 0, rank 1, ...) shows either every line or one rank's lines only.
// Lines without the prefix (the job's own lines) show only under "all". Ranks appear in the row as
// their first line arrives, or earlier when the caller knows them (the executor's rank list).
import { h, replace } from './dom.js'

const PREFIX = /^\[rank (\d{1,6})\] /

/** The rank a log line's text names, or null. */
export function rankOfLine(text) {
  const match = PREFIX.exec(text)
  return match ? Number(match[1]) : null
}

/**
 * @param pre      the log's <pre>: its .log-line children are shown or hidden
 * @param options  { rank: the filter to start with (null: all), onChange(rank), onRanks(ranks: number[]) }
 */
export function rankFilter(pre, { rank = null, onChange = () => {}, onRanks = () => {} } = {}) {
  const ranks = new Set()
  let filter = rank
  const bar = h('div', { class: 'rank-filter small', id: 'log-rank-filter', role: 'group', 'aria-label': 'show the lines of', hidden: true })

  const hides = (node) => filter !== null && node.dataset.rank !== String(filter)
  const apply = (node) => {
    if (node.classList?.contains('log-line')) node.classList.toggle('rank-hidden', hides(node))
  }

  function render() {
    bar.hidden = ranks.size === 0
    const button = (label, value) => h('button', {
      type: 'button',
      class: `tab ${filter === value ? 'active' : ''}`,
      'aria-pressed': String(filter === value),
      dataset: { rank: value === null ? 'all' : String(value) },
      onclick: () => set(value),
    }, label)
    replace(bar, button('all ranks', null), [...ranks].sort((a, b) => a - b).map((r) => button(`rank ${r}`, r)))
  }

  function set(value) {
    filter = value
    if (value !== null) ranks.add(value)
    for (const node of pre.querySelectorAll('.log-line')) apply(node)
    render()
    onChange(filter)
  }

  /** Tags a new line node with its rank (from its text) and hides it when the filter says so. */
  function tag(node, text) {
    const r = rankOfLine(text)
    if (r !== null) {
      node.dataset.rank = String(r)
      if (!ranks.has(r)) {
        ranks.add(r)
        render()
        onRanks([...ranks])
      }
    }
    apply(node)
    return node
  }

  /** Ranks the caller knows of before their lines arrive. */
  function know(list) {
    const before = ranks.size
    for (const r of list) if (Number.isInteger(r) && r >= 0) ranks.add(r)
    if (ranks.size !== before) render()
  }

  if (filter !== null) ranks.add(filter)
  render()
  return { el: bar, tag, set, know, get rank() { return filter } }
}
