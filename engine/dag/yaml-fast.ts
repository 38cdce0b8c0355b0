/**
 * The fast path for files that are valid, which is nearly all of them on every scheduler pass.
 * js-yaml parses about fifteen times faster than the `yaml` package but keeps no source
 * positions. So: parse plain-looking documents with js-yaml and validate the value; only when that
 * finds a problem (or the text uses anything unusual) is the file parsed again by yaml-load.ts,
 * whose result is the one reported, with exact positions. Diagnostics always come from one parser.
 */
import { createRequire } from 'node:module'
import { LIMITS, findDeepFlowNesting } from './limits.ts'
import type { Json } from './yaml-load.ts'
import { parsePlainYaml } from './yaml-plain.ts'

const decoder = new TextDecoder('utf-8', { fatal: true })
const requireHere = createRequire(import.meta.url)
/** js-yaml is loaded the first time a file is not plain enough for parsePlainYaml. */
let jsyaml: typeof import('js-yaml') | undefined

/** The document's value, or undefined when the file must take the careful path. */
export function loadYamlFast(bytes: Uint8Array): Json | undefined {
  if (bytes.byteLength > LIMITS.maxFileBytes) return undefined
  let text: string
  try {
    text = decoder.decode(bytes)
  } catch {
    return undefined
  }
  return loadYamlFastText(text)
}

/**
 * loadYamlFast for a file's text, decoded from valid UTF-8 (a byte order mark at its start is
 * dropped here, as the decoder drops it).
 */
export function loadYamlFastText(text: string): Json | undefined {
  if (text.length * 3 > LIMITS.maxFileBytes && Buffer.byteLength(text) > LIMITS.maxFileBytes) return undefined
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  // Plain files need neither js-yaml nor the scans that guard it.
  const plain = parsePlainYaml(text)
  if (plain !== undefined) return plain
  if (needsCarefulParser(text)) return undefined
  let value: unknown
  try {
    jsyaml ??= requireHere('js-yaml') as typeof import('js-yaml')
    value = jsyaml.load(text, { schema: jsyaml.CORE_SCHEMA, json: false })
  } catch {
    return undefined
  }
  return isPlainJson(value, 1, new Set()) ? (value as Json) : undefined
}

/** ASCII characters that none of needsCarefulParser's checks looks at. */
const PLAIN = new Uint8Array(128)
for (const ch of 'abcdfghijklmnopqrstuvwxyzABCDFGHIJKLMNOPQRSTUVWXYZ0123456789 _/:=$();@^~|>!+') PLAIN[ch.charCodeAt(0)] = 1

/** `\s` of a regular expression; a position before the text counts as a line start. */
const isSpace = (ch: number): boolean => ch === 0x20 || ch === 0x0a || ch === 0x0d || ch === 0x09 || ch === 0x0b || ch === 0x0c || ch === 0xa0 || ch === 0xfeff || ch === 0x2028 || ch === 0x2029 || (ch >= 0x2000 && ch <= 0x200a) || ch === 0x1680 || ch === 0x202f || ch === 0x205f || ch === 0x3000
const isWordOrDash = (ch: number): boolean => (ch >= 0x30 && ch <= 0x39) || (ch >= 0x41 && ch <= 0x5a) || (ch >= 0x61 && ch <= 0x7a) || ch === 0x5f || ch === 0x2d
const isDigit = (ch: number): boolean => ch >= 0x30 && ch <= 0x39

/**
 * Whether the text needs the careful parser's checks, in one pass over its characters (this runs on
 * every file, and separate regular expressions cost as much as js-yaml's parse). It is true for:
 * a byte order mark; characters a YAML stream may not hold, and tabs; anchors and aliases; document
 * markers and directives; complex keys; merge keys; flow collections spread over lines; numbers with
 * exponents (the two parsers read those differently); a quoted scalar or flow collection continued on
 * the next line (an odd number of quotes, or unbalanced brackets, on a line: the parsers disagree on how
 * far a continuation must be indented; apostrophes in plain text count too, which only costs those
 * files the fast path); and flow nesting deeper than the limit (a deep nesting costs a parser seconds,
 * and its stack, before any check on the tree could run). Aliases that slip past this are caught by
 * isPlainJson: a shared object sends the file to the careful path.
 */
export function needsCarefulParser(text: string): boolean {
  const n = text.length
  if (n > 0 && text.charCodeAt(0) === 0xfeff) return true
  // Per line: quote parity and flow brackets outside quotes.
  let double = 0
  let single = 0
  let flow = 0
  let opened = 0
  let atLineStart = true
  for (let i = 0; i < n; i++) {
    const ch = text.charCodeAt(i)
    // Most characters matter to none of the checks below (an e only after a digit; - and . only at a line start).
    if (ch < 0x80 && (PLAIN[ch] === 1 || ((ch === 0x65 || ch === 0x45) && !isDigit(text.charCodeAt(i - 1))) || ((ch === 0x2d || ch === 0x2e) && !atLineStart))) {
      atLineStart = false
      continue
    }
    if (ch === 0x0a) {
      if (double % 2 === 1 || single % 2 === 1 || flow !== 0) return true
      double = 0
      single = 0
      atLineStart = true
      continue
    }
    // Forbidden characters (C0 controls but LF and CR, DEL, U+FFFE/U+FFFF) and tabs.
    if ((ch < 0x20 && ch !== 0x0d) || ch === 0x7f || ch === 0xfffe || ch === 0xffff) return true
    const prev = i === 0 ? 0x0a : text.charCodeAt(i - 1)
    if (atLineStart) {
      // Document markers and directives.
      if (ch === 0x25 /* % */) return true
      if ((ch === 0x2d || ch === 0x2e) && text.charCodeAt(i + 1) === ch && text.charCodeAt(i + 2) === ch) return true
    }
    atLineStart = ch === 0x0d || ch === 0x2028 || ch === 0x2029
    switch (ch) {
      case 0x26: // & anchor
      case 0x2a: // * alias
        if ((isSpace(prev) || prev === 0x5b || prev === 0x7b || prev === 0x2c) && isWordOrDash(text.charCodeAt(i + 1))) return true
        break
      case 0x3f: // ? complex key
        if (isSpace(prev) && isSpace(text.charCodeAt(i + 1))) return true
        break
      case 0x3c: // << merge key
        if (text.charCodeAt(i + 1) === 0x3c) return true
        break
      case 0x65: // exponent
      case 0x45: {
        const next = text.charCodeAt(i + 1)
        if (isDigit(prev) && (isDigit(next) || ((next === 0x2b || next === 0x2d) && isDigit(text.charCodeAt(i + 2))))) return true
        break
      }
      case 0x5b: // [ { , with nothing but blanks (or a comment) after it on its line
      case 0x7b:
      case 0x2c: {
        let j = i + 1
        for (; j < n; j++) {
          const next = text.charCodeAt(j)
          if (next === 0x0a || next === 0x0d || next === 0x2028 || next === 0x2029) return true
          if (!isSpace(next)) break
        }
        if (j === n || text.charCodeAt(j) === 0x23) return true
        if (ch !== 0x2c) opened++
        break
      }
    }
    // Quoted scalars and flow collections continued on the next line, counted per line.
    if (ch === 0x22 && prev !== 0x5c) double++
    else if (ch === 0x27) single++
    else if (double % 2 === 0 && single % 2 === 0) {
      if (ch === 0x5b || ch === 0x7b) flow++
      else if (ch === 0x5d || ch === 0x7d) flow--
    }
  }
  if (double % 2 === 1 || single % 2 === 1 || flow !== 0) return true
  // Only a text with more brackets than the depth limit can nest deeper than it.
  return opened > LIMITS.maxDepth && findDeepFlowNesting(text, LIMITS.maxDepth) !== undefined
}

/**
 * Scalars, lists and string-keyed mappings only, no deeper than the limit, and a tree: js-yaml
 * shares one object for every alias of an anchor, so an object met twice means aliases, which
 * only the careful path may expand (with its budget).
 */
function isPlainJson(value: unknown, depth: number, seen: Set<object>): boolean {
  if (depth > LIMITS.maxDepth) return false
  if (value === null || typeof value !== 'object') return value === null || typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number'
  if (seen.has(value)) return false
  seen.add(value)
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isPlainJson(value[i], depth + 1, seen)) return false
    return true
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return false
  for (const key in value) if (!isPlainJson((value as Record<string, unknown>)[key], depth + 1, seen)) return false
  return true
}
