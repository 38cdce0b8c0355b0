// The trigger form, generated from a DAG's `params` definitions (small JSON Schemas): one field per
// parameter with its type, default, enum and bounds, checked here before submit; the server checks
// again and its errors are shown as they come.
import { h } from './dom.js'

const INPUT_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'array', 'object'])

function typeOf(def) {
  const t = Array.isArray(def.type) ? def.type.find((x) => x !== 'null') : def.type
  if (INPUT_TYPES.has(t)) return t
  if (Array.isArray(def.enum)) return 'enum'
  return 'json'
}

/** One field: its element and a read() that returns { value } or { error } or { omit }. */
function field(name, def) {
  const type = Array.isArray(def.enum) ? 'enum' : typeOf(def)
  const hasDefault = Object.hasOwn(def, 'default')
  const id = `param-${name}`
  let input
  if (type === 'enum') {
    input = h('select', { id, name }, hasDefault ? null : h('option', { value: '' }, '— choose —'),
      def.enum.map((v, i) => h('option', { value: String(i), selected: hasDefault && JSON.stringify(v) === JSON.stringify(def.default) }, typeof v === 'string' ? v : JSON.stringify(v))))
  } else if (type === 'boolean') {
    input = h('input', { id, name, type: 'checkbox', checked: def.default === true })
  } else if (type === 'number' || type === 'integer') {
    input = h('input', { id, name, type: 'number', step: type === 'integer' ? (def.multipleOf ?? 1) : (def.multipleOf ?? 'any'), min: def.minimum ?? def.exclusiveMinimum, max: def.maximum ?? def.exclusiveMaximum, value: hasDefault ? String(def.default) : undefined })
  } else if (type === 'string') {
    input = h('input', { id, name, type: 'text', minlength: def.minLength, maxlength: def.maxLength, value: hasDefault ? def.default : undefined, placeholder: def.format ?? undefined })
  } else {
    input = h('textarea', { id, name, rows: 2, spellcheck: 'false', placeholder: 'JSON' }, hasDefault ? JSON.stringify(def.default) : '')
  }
  const hint = [
    type === 'enum' ? 'one of the listed values' : type,
    def.minimum !== undefined ? `≥ ${def.minimum}` : null,
    def.exclusiveMinimum !== undefined ? `> ${def.exclusiveMinimum}` : null,
    def.maximum !== undefined ? `≤ ${def.maximum}` : null,
    def.exclusiveMaximum !== undefined ? `< ${def.exclusiveMaximum}` : null,
    def.minLength !== undefined ? `at least ${def.minLength} characters` : null,
    def.maxLength !== undefined ? `at most ${def.maxLength} characters` : null,
    def.pattern ? `matches /${def.pattern}/` : null,
    hasDefault ? `default ${JSON.stringify(def.default)}` : 'required',
  ].filter(Boolean).join(', ')
  const error = h('div', { class: 'field-error', id: `${id}-error`, role: 'alert', hidden: true })
  const el = h('div', { class: 'field', dataset: { param: name } },
    h('label', { for: id }, name, hasDefault ? null : h('span', { class: 'req', title: 'required' }, ' *')),
    input,
    h('div', { class: 'hint' }, def.description ? `${def.description} — ${hint}` : hint),
    error)

  function read() {
    if (type === 'boolean') return { value: input.checked }
    if (type === 'enum') return input.value === '' ? (hasDefault ? { omit: true } : { error: 'choose a value' }) : { value: def.enum[Number(input.value)] }
    const raw = input.value
    if (raw.trim() === '') {
      if (type === 'string' && !hasDefault) return check('')
      return hasDefault ? { omit: true } : { error: 'a value is required' }
    }
    if (type === 'number' || type === 'integer') {
      const n = Number(raw)
      if (!Number.isFinite(n)) return { error: 'not a number' }
      if (type === 'integer' && !Number.isInteger(n)) return { error: 'must be a whole number' }
      return check(n)
    }
    if (type === 'string') return check(raw)
    try {
      return check(JSON.parse(raw))
    } catch {
      return { error: 'not valid JSON' }
    }
  }

  function check(value) {
    if (typeof value === 'number') {
      if (def.minimum !== undefined && value < def.minimum) return { error: `must be ≥ ${def.minimum}` }
      if (def.maximum !== undefined && value > def.maximum) return { error: `must be ≤ ${def.maximum}` }
      if (def.exclusiveMinimum !== undefined && value <= def.exclusiveMinimum) return { error: `must be > ${def.exclusiveMinimum}` }
      if (def.exclusiveMaximum !== undefined && value >= def.exclusiveMaximum) return { error: `must be < ${def.exclusiveMaximum}` }
    }
    if (typeof value === 'string') {
      if (def.minLength !== undefined && value.length < def.minLength) return { error: `must have at least ${def.minLength} characters` }
      if (def.maxLength !== undefined && value.length > def.maxLength) return { error: `must have at most ${def.maxLength} characters` }
      if (def.pattern) {
        try {
          if (!new RegExp(def.pattern, 'u').test(value)) return { error: `must match /${def.pattern}/` }
        } catch {
          // A pattern this browser cannot compile: the server decides.
        }
      }
    }
    if (type === 'array' && !Array.isArray(value)) return { error: 'must be a JSON array' }
    if (type === 'object' && (value === null || typeof value !== 'object' || Array.isArray(value))) return { error: 'must be a JSON object' }
    return { value }
  }

  return { el, read, error, input }
}

/**
 * The form. `onSubmit(body)` gets `{ params, logical_date? }` once every field is valid; it returns
 * a promise, and the form stays disabled until it settles.
 */
export function paramsForm(definitions, onSubmit) {
  const fields = Object.entries(definitions ?? {}).map(([name, def]) => ({ name, ...field(name, def ?? {}) }))
  const logicalDate = h('input', { id: 'trigger-logical-date', name: 'logical_date', type: 'text', placeholder: 'now (or 2026-01-01, 2026-01-01T02:00:00Z)' })
  const submit = h('button', { type: 'submit', class: 'primary', id: 'trigger-submit' }, 'Trigger run')
  const form = h('form', { id: 'trigger-form', class: 'trigger-form', novalidate: true },
    fields.length === 0 ? h('p', { class: 'muted small' }, 'This DAG declares no parameters.') : fields.map((f) => f.el),
    h('div', { class: 'field' }, h('label', { for: 'trigger-logical-date' }, 'logical date'), logicalDate, h('div', { class: 'hint' }, 'optional; in the DAG\u2019s time zone unless it has an offset')),
    h('div', { class: 'actions' }, submit))

  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const params = {}
    let firstBad
    for (const f of fields) {
      const result = f.read()
      f.error.hidden = !result.error
      f.error.textContent = result.error ?? ''
      f.input.classList.toggle('invalid', Boolean(result.error))
      f.input.setAttribute('aria-invalid', result.error ? 'true' : 'false')
      if (result.error) firstBad ??= f.input
      else if (!result.omit) params[f.name] = result.value
    }
    if (firstBad) {
      firstBad.focus()
      return
    }
    submit.disabled = true
    try {
      await onSubmit({ params, ...(logicalDate.value.trim() ? { logical_date: logicalDate.value.trim() } : {}) })
    } finally {
      submit.disabled = false
    }
  })
  return form
}
