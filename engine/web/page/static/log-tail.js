// A live log tail over server-sent events: GET .../logs?follow=true[&attempt=N]. The server starts
// with the last 1000 lines of the attempt and an `attempt` event saying whether earlier lines exist;
// "Load earlier lines" pages back through them (GET .../logs?attempt&before&tail). Without an attempt
// the server follows the latest one and each retry in turn (an `attempt` event between them).
// The stream ends with an `end` event; the EventSource is then closed so it does not reconnect
// (a reconnect after a network error resumes after the last line: the SSE id is "attempt:line").
// Lines of a multi-rank job can be narrowed to one rank (log-ranks.js).
import { api, enc } from './api.js'
import { h } from './dom.js'
import { fmtClock } from './format.js'
import { rankFilter } from './log-ranks.js'

const MAX_LINES = 5000
const PAGE = 1000
const TIMES_KEY = 'cairn.logTimes'

/** `ranks`: options of the rank filter ({ rank, onChange, onRanks }, see log-ranks.js). */
export function logTail(runId, taskId, attempt, { ranks: rankOptions } = {}) {
  const base = `/runs/${enc(runId)}/tasks/${enc(taskId)}/logs`
  const status = h('div', { class: 'log-status muted small', id: 'log-status' }, 'connecting…')
  const pre = h('pre', { class: 'log', id: 'log', tabindex: 0 })
  const earlierButton = h('button', { type: 'button', id: 'log-earlier', class: 'small', hidden: true, onclick: () => void loadEarlier() }, 'Load earlier lines')
  const timesBox = h('input', { type: 'checkbox', id: 'log-times', onchange: () => showTimes(timesBox.checked) })
  const download = h('a', { id: 'log-download', class: 'small', download: '', title: 'the whole log of this attempt as a text file' }, 'Download')
  const toolbar = h('div', { class: 'log-toolbar small' }, earlierButton, h('label', null, timesBox, ' timestamps'), download)
  const ranks = rankFilter(pre, rankOptions)
  const el = h('div', { class: 'log-tail', dataset: { task: taskId, attempt: attempt ?? 'latest' } }, status, toolbar, ranks.el, pre)

  let shownAttempt = attempt ?? null
  const lastId = new Map() // attempt -> last line id shown (a reconnect must not repeat lines)
  const updateDownload = () => {
    if (!shownAttempt) return download.removeAttribute('href')
    download.href = `/api/v1${base}/download?attempt=${shownAttempt}${timesBox.checked ? '&timestamps=true' : ''}`
  }
  const showTimes = (on) => {
    pre.classList.toggle('show-times', on)
    localStorage.setItem(TIMES_KEY, on ? '1' : '')
    updateDownload()
  }
  timesBox.checked = localStorage.getItem(TIMES_KEY) === '1'
  showTimes(timesBox.checked)

  const lineNode = (n, line) =>
    ranks.tag(h('div', {
      class: `log-line stream-${line.stream}${line.dropped ? ' log-dropped' : ''}`,
      title: line.at,
      dataset: { attempt: n, id: line.id, time: fmtClock(line.at) },
    }, line.line), line.line)

  const nearBottom = () => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40
  const append = (node) => {
    const stick = nearBottom()
    pre.append(node)
    let trimmed = false
    while (pre.childNodes.length > MAX_LINES) {
      pre.firstChild.remove()
      trimmed = true
    }
    if (trimmed) earlierButton.hidden = !pre.querySelector('.log-line')
    if (stick) pre.scrollTop = pre.scrollHeight
  }

  async function loadEarlier() {
    const first = pre.querySelector('.log-line')
    if (!first) return
    earlierButton.disabled = true
    try {
      const n = Number(first.dataset.attempt)
      const page = await api(`${base}?attempt=${n}&before=${first.dataset.id}&tail=${PAGE}`)
      const height = pre.scrollHeight
      const nodes = page.lines.map((line) => lineNode(n, line))
      first.before(...nodes)
      // Keep what the reader was looking at in place.
      pre.scrollTop += pre.scrollHeight - height
      earlierButton.hidden = page.next_before === null
    } catch (error) {
      status.textContent = `could not load earlier lines: ${error.message}`
    } finally {
      earlierButton.disabled = false
    }
  }

  const source = new EventSource(`/api/v1${base}?follow=true${attempt ? `&attempt=${attempt}` : ''}`)
  source.addEventListener('open', () => (status.textContent = `following ${attempt ? `attempt ${attempt}` : 'the latest attempt'}…`))
  source.addEventListener('attempt', (event) => {
    const { attempt: n, earlier } = JSON.parse(event.data)
    if (lastId.has(n)) return // a reconnect announcing the same attempt again
    lastId.set(n, 0)
    shownAttempt = n
    updateDownload()
    if (!pre.querySelector('.log-line')) earlierButton.hidden = !earlier
    append(h('div', { class: 'log-sep' }, `── attempt ${n} ──`))
  })
  source.addEventListener('line', (event) => {
    const line = JSON.parse(event.data)
    if (line.id <= (lastId.get(line.attempt) ?? 0)) return
    lastId.set(line.attempt, line.id)
    append(lineNode(line.attempt, line))
  })
  source.addEventListener('end', (event) => {
    const { state, attempt: n } = JSON.parse(event.data)
    source.close()
    status.textContent = n ? `attempt ${n} ended: ${state}` : `ended: ${state}`
    el.dataset.ended = state
    if (!pre.querySelector('.log-line')) append(h('div', { class: 'muted' }, '(no output)'))
  })
  source.addEventListener('unauthorized', (event) => {
    // The session ended or the user was disabled: the server closed the stream; do not reconnect.
    source.close()
    status.textContent = JSON.parse(event.data).message
  })
  source.addEventListener('error', (event) => {
    if (event.data) {
      // The server's own `error` event: it ended the stream.
      source.close()
      status.textContent = JSON.parse(event.data).message
    } else if (source.readyState === EventSource.CONNECTING) {
      status.textContent = 'reconnecting…'
    } else {
      status.textContent = 'the log stream closed'
    }
  })

  return { el, close: () => source.close(), showRank: (rank) => ranks.set(rank), knowRanks: (list) => ranks.know(list) }
}
