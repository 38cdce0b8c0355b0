/**
 * Replaces secret values with `***` in log lines, outputs, API responses and pages.
 *
 * Besides each value as it is, the masker also hides:
 * - its JSON-escaped form, so a secret holding `"`, `\` or a newline is hidden inside
 *   JSON-stringified outputs too;
 * - its URL-encoded form (passwords inside connection URLs);
 * - each line of a multi-line value (PEM keys), because output is masked one line at a time.
 * Values (and lines) shorter than MIN_SECRET_LENGTH are ignored: masking every `a` or `1` would
 * wreck the logs while hiding nothing an attacker could not guess.
 */
export const MIN_SECRET_LENGTH = 3
export const MASK = '***'

export interface Masker {
  (text: string): string
  /** A copy of `value` with every string (object keys included) masked; other values unchanged. */
  deep<T>(value: T): T
}

export function createMasker(values: readonly string[]): Masker {
  const needles = new Set<string>()
  for (const value of values) {
    for (const form of [value, JSON.stringify(value).slice(1, -1), safeEncode(value), ...value.split(/\r?\n/)]) {
      if (form.length >= MIN_SECRET_LENGTH) needles.add(form)
    }
  }
  // Longest first: the regex takes the first alternative that matches at a position, so a secret
  // that contains another is masked whole.
  const sorted = [...needles].sort((a, b) => b.length - a.length)
  const pattern = sorted.length === 0 ? undefined : new RegExp(sorted.map(escapeRegExp).join('|'), 'g')
  const mask = (text: string): string => (pattern === undefined || text === '' ? text : text.replace(pattern, MASK))
  const deep = <T>(value: T): T => (pattern === undefined ? value : (maskValue(value, mask) as T))
  return Object.assign(mask, { deep })
}

/** `maskDeep(value, values)`: the same as `createMasker(values).deep(value)`, for one-off use. */
export function maskDeep<T>(value: T, values: readonly string[]): T {
  return createMasker(values).deep(value)
}

function maskValue(value: unknown, mask: (text: string) => string): unknown {
  if (typeof value === 'string') return mask(value)
  if (Array.isArray(value)) return value.map((item) => maskValue(item, mask))
  if (value !== null && typeof value === 'object') {
    const proto: unknown = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) return value // Dates, Buffers, class instances
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [mask(key), maskValue(item, mask)]))
  }
  return value
}

function safeEncode(value: string): string {
  try {
    return encodeURIComponent(value)
  } catch {
    return value // lone surrogates
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
