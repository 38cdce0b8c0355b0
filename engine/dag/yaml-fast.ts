/**
 * The fast path for files that are valid, which is nearly all of them on every scheduler pass.
 * js-yaml parses about fifteen times faster than the `yaml` package but keeps no source
 * positions. So: parse plain-looking documents with js-yaml and validate the value; only when that
 * finds a problem (or the text uses anything unusual) is the file parsed again by yaml-load.ts,
 * whose result is the one reported, with exact positions. Diagnostics always come from one parser.
 */
import jsyaml from 'js-yaml'
import { LIMITS, findDeepFlowNesting, findForbiddenCharacter } from './limits.ts'
import type { Json } from './yaml-load.ts'

const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * Text that needs the careful parser's checks: tabs, anchors and aliases, document markers and
 * directives, complex keys, merge keys, flow collections spread over lines and numbers with
 * exponents (the two parsers read those differently). (Aliases that slip past this are caught below: a shared
 * object sends the file to the careful path.)
 */
const UNUSUAL = /\t|(?:^|[\s[{,])[&*][\w-]|^(?:---|\.\.\.|%)|(?:^|\s)\?\s|<<|[[{,]\s*(?:#.*)?$|\d[eE][-+]?\d/m

/** The document's value, or undefined when the file must take the careful path. */
export function loadYamlFast(bytes: Uint8Array): Json | undefined {
  if (bytes.byteLength > LIMITS.maxFileBytes) return undefined
  let text: string
  try {
    text = decoder.decode(bytes)
  } catch {
    return undefined
  }
  if (text.charCodeAt(0) === 0xfeff) return undefined
  if (UNUSUAL.test(text) || hasMultilineQuote(text)) return undefined
  if (findForbiddenCharacter(text) !== undefined || findDeepFlowNesting(text, LIMITS.maxDepth) !== undefined) return undefined
  let value: unknown
  try {
    value = jsyaml.load(text, { schema: jsyaml.CORE_SCHEMA, json: false })
  } catch {
    return undefined
  }
  return isPlainJson(value, 1, new Set()) ? (value as Json) : undefined
}

/**
 * A quoted scalar or flow collection continued on the next line (an odd number of quotes, or
 * unbalanced brackets, on a line): the parsers disagree on how far a continuation must be indented. Apostrophes in plain text also count,
 * which only costs those files the fast path.
 */
function hasMultilineQuote(text: string): boolean {
  let double = 0
  let single = 0
  let flow = 0
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    if (ch === 0x0a) {
      if (double % 2 === 1 || single % 2 === 1 || flow !== 0) return true
      double = 0
      single = 0
    } else if (ch === 0x22 && text.charCodeAt(i - 1) !== 0x5c) double++
    else if (ch === 0x27) single++
    else if (double % 2 === 0 && single % 2 === 0) {
      if (ch === 0x5b || ch === 0x7b) flow++
      else if (ch === 0x5d || ch === 0x7d) flow--
    }
  }
  return double % 2 === 1 || single % 2 === 1 || flow !== 0
}

/**
 * Scalars, lists and string-keyed mappings only, no deeper than the limit, and a tree: js-yaml
 * shares one object for every alias of an anchor, so an object met twice means aliases, which
 * only the careful path may expand (with its budget).
 */
function isPlainJson(value: unknown, depth: number, seen: Set<object>): boolean {
  if (depth > LIMITS.maxDepth) return false
  if (value === null || typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number') return true
  if (typeof value !== 'object' || seen.has(value)) return false
  seen.add(value)
  if (Array.isArray(value)) return value.every((item) => isPlainJson(item, depth + 1, seen))
  if (Object.getPrototypeOf(value) !== Object.prototype) return false
  for (const key of Object.keys(value)) if (!isPlainJson((value as Record<string, unknown>)[key], depth + 1, seen)) return false
  return true
}
