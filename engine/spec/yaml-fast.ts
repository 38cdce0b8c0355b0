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
 * directives, complex keys, merge keys. (Aliases that slip past this are caught below: a shared
 * object sends the file to the careful path.)
 */
const UNUSUAL = /\t|(?:^|[\s[{,])[&*][\w-]|^(?:---|\.\.\.|%)|(?:^|\s)\?\s|<</m

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
  if (UNUSUAL.test(text)) return undefined
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
