// A live log tail over server-sent events: GET .../logs?follow=true[&attempt=N]. Without an attempt
// the server follows the latest one and each retry in turn (an `attempt` event between them).
// The stream ends with an `end` event; the EventSource is then closed so it does not reconnect.
import { enc } from './api.js'
import { h } from './dom.js'

const MAX_LINES = 5000

export function logTail(runId, taskId, attempt) {
  const status = h('div', { class: 'log-status muted small', id: 'log-status' }, 'connecting…')
  const pre = h('pre', { class: 'log', id: 'log', tabindex: 0 })
  const el = h('div', { class: 'log-tail', dataset: { task: taskId, attempt: attempt ?? 'latest' } }, status, pre)
  let lastId = 0
  const url = `/api/v1/runs/${enc(runId)}/tasks/${enc(taskId)}/logs?follow=true${attempt ? `&attempt=${attempt}` : ''}`
  const source = new EventSource(url)

  const nearBottom = () => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40
  const append = (node) => {
    const stick = nearBottom()
    pre.append(node)
    while (pre.childNodes.length > MAX_LINES) pre.firstChild.remove()
    if (stick) pre.scrollTop = pre.scrollHeight
  }

  source.addEventListener('open', () => (status.textContent = `following ${attempt ? `attempt ${attempt}` : 'the latest attempt'}…`))
  source.addEventListener('line', (event) => {
    const line = JSON.parse(event.data)
    // A reconnect replays the attempt from its start: skip what is already shown.
    if (line.id <= lastId) return
    lastId = line.id
    append(h('div', { class: `log-line stream-${line.stream}`, title: line.at }, line.line))
  })
  source.addEventListener('attempt', (event) => {
    const { attempt: n } = JSON.parse(event.data)
    append(h('div', { class: 'log-sep' }, `── attempt ${n} ──`))
  })
  source.addEventListener('end', (event) => {
    const { state, attempt: n } = JSON.parse(event.data)
    source.close()
    status.textContent = n ? `attempt ${n} ended: ${state}` : `ended: ${state}`
    el.dataset.ended = state
    if (!pre.childNodes.length) append(h('div', { class: 'muted' }, '(no output)'))
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

  return { el, close: () => source.close() }
}
