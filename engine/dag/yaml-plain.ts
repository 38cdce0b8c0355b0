/**
 * The fastest path: a reader for the plain block YAML that DAG files are nearly always written in
 * (nested `key: value` mappings, `- item` lists, one-line flow lists and mappings, plain and quoted
 * one-line scalars, literal and folded block scalars, comments). It reads such a text several times
 * faster than js-yaml, in one pass that also makes the checks the js-yaml path needs separate scans
 * for. Anything else (anchors, tags, multi-line plain or quoted scalars and flow collections, the
 * rarer block scalar forms, escapes beyond the common ones, duplicate keys, tabs, carriage returns,
 * unusual characters, numbers in any form but plain decimals, keys that are not plain names) makes
 * it give up, and the file takes the js-yaml path and, when that finds a problem, the careful
 * parser. What it does read, it reads exactly as the careful parser (the `yaml` package, core
 * schema) does: the unit test yaml-plain.test.ts checks that on every fixture and on fuzzed texts.
 *
 * This file reads the block structure (mappings, sequences, keys, and which kind of value follows a
 * key); the scalars are read in yaml-plain-scalars.ts, flow collections in yaml-plain-flow.ts, and
 * the state they share is in yaml-plain-cursor.ts.
 */
import type { Json } from './yaml-load.ts'
import { GIVE_UP, HASH, MAX_DEPTH, MAX_KEY, NL, SPACE, cursor, giveUp } from './yaml-plain-cursor.ts'
import { blockScalar, doubleQuoted, plainStart, resolvePlain, singleQuoted } from './yaml-plain-scalars.ts'
import { flowNode } from './yaml-plain-flow.ts'

/** The document's value when the text is plain YAML with a mapping at its root; otherwise undefined. */
export function parsePlainYaml(text: string): { [key: string]: Json } | undefined {
  if (NOT_ASCII.test(text) && UNUSUAL_CHARACTER.test(text)) return undefined
  cursor.unterminated = text.length === 0 || text.charCodeAt(text.length - 1) !== NL
  cursor.src = cursor.unterminated ? `${text}\n` : text
  cursor.pos = 0
  cursor.depth = 0
  cursor.nextHash = -1
  try {
    if (nextIndent() !== 0) return undefined
    if (isSequenceEntry(cursor.pos)) return undefined
    const value = mapping(0, cursor.pos)
    return nextIndent() === -1 ? value : undefined
  } catch (error) {
    if (error === GIVE_UP) return undefined
    throw error
  } finally {
    cursor.src = ''
  }
}

/** Most files are printable ASCII and line feeds only, which this simpler expression confirms faster. */
const NOT_ASCII = /[^\n\x20-\x7e]/
/**
 * A character this reader does not handle: anything but printable ASCII, line feeds, and letters and
 * symbols beyond ASCII (so no C1 controls, Unicode spaces and line separators, byte order marks,
 * non-characters or unpaired surrogates, which YAML parsers treat in their own ways). A regular
 * expression scans a file several times faster than a loop over its characters.
 */
const UNUSUAL_CHARACTER = /[^\n\x20-\x7e\u00a1-\u167f\u1681-\u1fff\u2070-\u2fff\u3001-\ud7ff\ue000-\ufefe\uff00-\uffef\ud800-\udfff]|[\ud800-\udbff](?![\udc00-\udfff])|[\udc00-\udfff](?<![\ud800-\udbff][\udc00-\udfff])/

/**
 * Skips blank and comment lines from `pos` (a line start) and returns the indentation of the next
 * line with content, leaving `pos` at that line's start; -1 at the end of the text.
 */
function nextIndent(): number {
  const src = cursor.src
  const n = src.length
  for (;;) {
    if (cursor.pos >= n) return -1
    let i = cursor.pos
    while (src.charCodeAt(i) === SPACE) i++
    const ch = src.charCodeAt(i)
    if (ch === NL) cursor.pos = i + 1
    else if (ch === HASH) cursor.pos = src.indexOf('\n', i) + 1
    else return i - cursor.pos
  }
}

/** `-` followed by a space or the line's end: a block sequence entry. */
function isSequenceEntry(at: number): boolean {
  const src = cursor.src
  if (src.charCodeAt(at) !== 0x2d) return false
  const next = src.charCodeAt(at + 1)
  return next === SPACE || next === NL
}

/** A node in block context whose first line (at `pos`) is indented by `indent`. */
function blockNode(indent: number): Json {
  return isSequenceEntry(cursor.pos + indent) ? sequence(indent) : mapping(indent, cursor.pos + indent)
}

/**
 * A block mapping whose keys are indented by `indent`; its first key starts at `at` (on the line at
 * `pos`, possibly after a sequence entry's `- `). Returns with `pos` at the start of the first line
 * less indented than its keys, or at the end.
 */
function mapping(indent: number, at: number): { [key: string]: Json } {
  const src = cursor.src
  if (++cursor.depth > MAX_DEPTH) giveUp()
  const out: { [key: string]: Json } = {}
  for (;;) {
    const key = blockKey(at)
    // After blockKey, pos is just past the colon.
    if (Object.hasOwn(out, key)) giveUp()
    let i = cursor.pos
    while (src.charCodeAt(i) === SPACE) i++
    const ch = src.charCodeAt(i)
    let value: Json
    if (ch === NL || (ch === HASH && i > cursor.pos)) {
      cursor.pos = src.indexOf('\n', i) + 1
      const next = nextIndent()
      if (next > indent) value = blockNode(next)
      else if (next === indent && isSequenceEntry(cursor.pos + indent)) value = sequence(indent)
      else value = null
    } else {
      value = inlineValue(i, indent)
    }
    out[key] = value
    const next = nextIndent()
    if (next < indent) break
    if (next > indent) giveUp()
    at = cursor.pos + indent
  }
  cursor.depth--
  return out
}

/** A block sequence whose `-` are indented by `indent`, the first on the line at `pos`. */
function sequence(indent: number): Json[] {
  const src = cursor.src
  if (++cursor.depth > MAX_DEPTH) giveUp()
  const out: Json[] = []
  for (;;) {
    const lineStart = cursor.pos
    let i = cursor.pos + indent + 1
    while (src.charCodeAt(i) === SPACE) i++
    const ch = src.charCodeAt(i)
    if (ch === NL || (ch === HASH && i > cursor.pos + indent + 1)) {
      cursor.pos = src.indexOf('\n', i) + 1
      const next = nextIndent()
      out.push(next > indent ? blockNode(next) : null)
    } else if (isSequenceEntry(i)) {
      giveUp()
    } else if (keyEnd(i) >= 0) {
      cursor.pos = lineStart
      out.push(mapping(i - lineStart, i))
    } else {
      out.push(inlineValue(i, indent))
    }
    const next = nextIndent()
    if (next < indent || (next === indent && !isSequenceEntry(cursor.pos + indent))) break
    if (next > indent) giveUp()
  }
  cursor.depth--
  return out
}

/**
 * A plain key: a name such as a task id, an env variable or an operator type (a letter, digit or
 * underscore, then those and `- . /`), then `:` and a space or the line's end. Sticky: it matches
 * at lastIndex only.
 */
const PLAIN_KEY = /[A-Za-z0-9_][A-Za-z0-9_.\/-]*:(?=[ \n])/y

/**
 * Where the value part starts when a block mapping key (a plain name or a one-line quoted string,
 * then `:` and a space or the line's end) starts at `at`, just past the colon; -1 when there is none.
 */
function keyEnd(at: number): number {
  const src = cursor.src
  const first = src.charCodeAt(at)
  let i = at
  if (first === 0x22 || first === 0x27) {
    i = src.indexOf(String.fromCharCode(first), at + 1)
    const nl = src.indexOf('\n', at)
    if (i < 0 || i > nl) return -1
    i++
  } else {
    PLAIN_KEY.lastIndex = at
    return PLAIN_KEY.test(src) ? PLAIN_KEY.lastIndex : -1
  }
  if (src.charCodeAt(i) !== 0x3a) return -1
  const next = src.charCodeAt(i + 1)
  return next === SPACE || next === NL ? i + 1 : -1
}

/** Reads the key at `at`; leaves `pos` just past its colon. */
function blockKey(at: number): string {
  const src = cursor.src
  const end = keyEnd(at)
  if (end < 0 || end - at > MAX_KEY) giveUp()
  const first = src.charCodeAt(at)
  let key: string
  if (first === 0x22) key = doubleQuoted(at)
  else if (first === 0x27) key = singleQuoted(at)
  else {
    const resolved = resolvePlain(src.slice(at, end - 1))
    if (typeof resolved !== 'string') giveUp()
    key = resolved
  }
  // A quoted key must close right before the colon (checked by keyEnd finding the quote's first match).
  if (first === 0x22 || first === 0x27) {
    if (cursor.pos !== end - 1) giveUp()
  }
  if (key === '__proto__') giveUp()
  cursor.pos = end
  return key
}

/**
 * A value written on the key's (or the `- `'s) line, starting at `i`: a quoted or plain scalar, a
 * one-line flow collection, then perhaps a comment, or a block scalar. Leaves `pos` at the next
 * line's start. (The callers give up when the next content line is indented more than `indent`,
 * the mapping's keys or the list's `-`: a continuation of the value, which this reader leaves to
 * the others.)
 */
function inlineValue(i: number, indent: number): Json {
  const src = cursor.src
  const ch = src.charCodeAt(i)
  let value: Json
  if (ch === 0x22) {
    value = doubleQuoted(i)
    endOfLine(cursor.pos)
  } else if (ch === 0x27) {
    value = singleQuoted(i)
    endOfLine(cursor.pos)
  } else if (ch === 0x5b || ch === 0x7b) {
    value = flowNode(i)
    endOfLine(cursor.pos)
  } else if (ch === 0x7c || ch === 0x3e) {
    value = blockScalar(i, indent)
  } else {
    // To the line's end or a comment (` #`), without trailing spaces (the only white space left).
    const nl = src.indexOf('\n', i)
    cursor.pos = nl + 1
    let end = nl
    if (cursor.nextHash < i) cursor.nextHash = src.indexOf('#', i) >>> 0
    if (cursor.nextHash < nl) {
      const comment = src.slice(i, nl).indexOf(' #')
      if (comment >= 0) end = i + comment
    }
    while (src.charCodeAt(end - 1) === SPACE) end--
    const text = src.slice(i, end)
    if (!plainStart(text, false) || text.includes(': ') || text.charCodeAt(text.length - 1) === 0x3a) giveUp()
    value = resolvePlain(text)
  }
  return value
}

/** After a quoted scalar or flow collection ending at `i`: only spaces and a comment, then the line's end. */
function endOfLine(i: number): void {
  const src = cursor.src
  const start = i
  while (src.charCodeAt(i) === SPACE) i++
  const ch = src.charCodeAt(i)
  if (ch === HASH && i > start) i = src.indexOf('\n', i)
  else if (ch !== NL) giveUp()
  cursor.pos = i + 1
}
