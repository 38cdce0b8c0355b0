// Pieces shared by the views.
import { h, replace } from '../dom.js'
import { api, enc } from '../api.js'

/**
 * The run (and task) that made something, as text when `cairn db prune` deleted the run: nothing to
 * link to, the ids kept, marked "(run pruned)"; `className` names the span for its view's styles.
 */
export function prunedRun(text, className) {
  return h('span', { class: className }, text, h('span', { class: 'muted' }, ' (run pruned)'))
}

export const canOperate = (session) => session.role === 'operator' || session.role === 'admin'

export function stateBadge(state) {
  return h('span', { class: `badge st-${state}`, dataset: { state } }, state.replace(/_/g, ' '))
}

/** Pause/unpause; the button text says what a click does. */
export function pauseButton(dag, onDone, onError) {
  return h('button', {
    type: 'button',
    class: `pause-toggle ${dag.paused ? 'is-paused' : ''}`,
    dataset: { dag: dag.dag_id, paused: String(dag.paused) },
    title: dag.paused ? 'the schedule is paused; click to resume it' : 'the schedule is active; click to pause it',
    onclick: async (event) => {
      event.currentTarget.disabled = true
      try {
        await api(`/dags/${enc(dag.dag_id)}/${dag.paused ? 'unpause' : 'pause'}`, { method: 'POST' })
        await onDone()
      } catch (error) {
        onError(error)
      }
    },
  }, dag.paused ? 'Unpause' : 'Pause')
}

/** A message area for the result of an action. */
export function notice() {
  const el = h('div', { class: 'notice', role: 'status', hidden: true })
  return {
    el,
    ok(...content) {
      el.className = 'notice ok'
      // replace() skips null parts; replaceChildren would print them as the text "null".
      replace(el, content)
      el.hidden = false
    },
    error(error) {
      el.className = 'notice error'
      const list = error?.body?.errors
      replace(el, h('strong', null, error?.message ?? String(error)), list?.length > 1 ? h('ul', null, list.map((e) => h('li', null, e))) : null)
      el.hidden = false
    },
    clear() {
      el.hidden = true
    },
  }
}
