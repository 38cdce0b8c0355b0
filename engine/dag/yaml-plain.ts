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
 */
import type { Json } from './yaml-load.ts'

/** Thrown to give up; caught in parsePlainYaml. */
const GIVE_UP: unique symbol = Symbol('give up')
/** Collections nested deeper than this are left to the other paths (which enforce the real limit). */
const MAX_DEPTH = 32
/** The `yaml` package refuses implicit keys longer than 1024 characters. */
const MAX_KEY = 1000

/** Placeholders for the flow collection that is not being read (never written to). */
const EMPTY_LIST: Json[] = []
const EMPTY_MAP: { [key: string]: Json } = {}

const NL = 0x0a
const SPACE = 0x20
const HASH = 0x23

let src = ''
/** Whether the text did not end with a line feed (src has one added): a block scalar reaching the end then keeps no final line break. */
let unterminated = false
let pos = 0
let depth = 0
/** Offset of the next `#` at or after the last place looked from (2^32 - 1 when there is none): found once per `#`, not per line. */
let nextHash = 0

/** The document's value when the text is plain YAML with a mapping at its root; otherwise undefined. */
export function parsePlainYaml(text: string): { [key: string]: Json } | undefined {
  if (NOT_ASCII.test(text) && UNUSUAL_CHARACTER.test(text)) return undefined
  unterminated = text.length === 0 || text.charCodeAt(text.length - 1) !== NL
  src = unterminated ? `${text}\n` : text
  pos = 0
  depth = 0
  nextHash = -1
  try {
    if (nextIndent() !== 0) return undefined
    if (isSequenceEntry(pos)) return undefined
    const value = mapping(0, pos)
    return nextIndent() === -1 ? value : undefined
  } catch (error) {
    if (error === GIVE_UP) return undefined
    throw error
  } finally {
    src = ''
  }
}

function giveUp(): never {
  throw GIVE_UP
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
  const n = src.length
  for (;;) {
    if (pos >= n) return -1
    let i = pos
    while (src.charCodeAt(i) === SPACE) i++
    const ch = src.charCodeAt(i)
    if (ch === NL) pos = i + 1
    else if (ch === HASH) pos = src.indexOf('\n', i) + 1
    else return i - pos
  }
}

/** `-` followed by a space or the line's end: a block sequence entry. */
function isSequenceEntry(at: number): boolean {
  if (src.charCodeAt(at) !== 0x2d) return false
  const next = src.charCodeAt(at + 1)
  return next === SPACE || next === NL
}

/** A node in block context whose first line (at `pos`) is indented by `indent`. */
function blockNode(indent: number): Json {
  return isSequenceEntry(pos + indent) ? sequence(indent) : mapping(indent, pos + indent)
}

/**
 * A block mapping whose keys are indented by `indent`; its first key starts at `at` (on the line at
 * `pos`, possibly after a sequence entry's `- `). Returns with `pos` at the start of the first line
 * less indented than its keys, or at the end.
 */
function mapping(indent: number, at: number): { [key: string]: Json } {
  if (++depth > MAX_DEPTH) giveUp()
  const out: { [key: string]: Json } = {}
  for (;;) {
    const key = blockKey(at)
    // After blockKey, pos is just past the colon.
    if (Object.hasOwn(out, key)) giveUp()
    let i = pos
    while (src.charCodeAt(i) === SPACE) i++
    const ch = src.charCodeAt(i)
    let value: Json
    if (ch === NL || (ch === HASH && i > pos)) {
      pos = src.indexOf('\n', i) + 1
      const next = nextIndent()
      if (next > indent) value = blockNode(next)
      else if (next === indent && isSequenceEntry(pos + indent)) value = sequence(indent)
      else value = null
    } else {
      value = inlineValue(i, indent)
    }
    out[key] = value
    const next = nextIndent()
    if (next < indent) break
    if (next > indent) giveUp()
    at = pos + indent
  }
  depth--
  return out
}

/** A block sequence whose `-` are indented by `indent`, the first on the line at `pos`. */
function sequence(indent: number): Json[] {
  if (++depth > MAX_DEPTH) giveUp()
  const out: Json[] = []
  for (;;) {
    const lineStart = pos
    let i = pos + indent + 1
    while (src.charCodeAt(i) === SPACE) i++
    const ch = src.charCodeAt(i)
    if (ch === NL || (ch === HASH && i > pos + indent + 1)) {
      pos = src.indexOf('\n', i) + 1
      const next = nextIndent()
      out.push(next > indent ? blockNode(next) : null)
    } else if (isSequenceEntry(i)) {
      giveUp()
    } else if (keyEnd(i) >= 0) {
      pos = lineStart
      out.push(mapping(i - lineStart, i))
    } else {
      out.push(inlineValue(i, indent))
    }
    const next = nextIndent()
    if (next < indent || (next === indent && !isSequenceEntry(pos + indent))) break
    if (next > indent) giveUp()
  }
  depth--
  return out
}

/**
 * A plain key: a name such as a task id, an env variable or an operator type (a letter, digit or
 * underscore, then those and `- . /`), then `:` and a space or the line's end. Sticky: it matches
 * at lastIndex only.
 */
const PLAIN_KEY = /[A-Za-z0-9_][A-Za-z0-9_.\/-]*:(?=[ \n])/y
/** The same name as a key inside a flow mapping, without the colon. */
const FLOW_KEY = /[A-Za-z0-9_][A-Za-z0-9_.\/-]*/y

/**
 * Where the value part starts when a block mapping key (a plain name or a one-line quoted string,
 * then `:` and a space or the line's end) starts at `at`, just past the colon; -1 when there is none.
 */
function keyEnd(at: number): number {
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
    if (pos !== end - 1) giveUp()
  }
  if (key === '__proto__') giveUp()
  pos = end
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
  const ch = src.charCodeAt(i)
  let value: Json
  if (ch === 0x22) {
    value = doubleQuoted(i)
    endOfLine(pos)
  } else if (ch === 0x27) {
    value = singleQuoted(i)
    endOfLine(pos)
  } else if (ch === 0x5b || ch === 0x7b) {
    value = flowNode(i)
    endOfLine(pos)
  } else if (ch === 0x7c || ch === 0x3e) {
    value = blockScalar(i, indent)
  } else {
    // To the line's end or a comment (` #`), without trailing spaces (the only white space left).
    const nl = src.indexOf('\n', i)
    pos = nl + 1
    let end = nl
    if (nextHash < i) nextHash = src.indexOf('#', i) >>> 0
    if (nextHash < nl) {
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

/**
 * A literal (`|`) or folded (`>`) block scalar whose header starts at `i`, clipped or stripped (`-`)
 * of its final line break; its lines are indented more than `indent`, by as much as the first one.
 * Gives up on the forms whose details parsers are likeliest to differ on: keep (`+`), an explicit
 * indentation, a comment after the header, blank lines with more spaces than the indentation, more
 * indented lines in a folded scalar, no content, and a scalar that ends the file without a line
 * feed. Leaves `pos` at the start of the first line after it.
 */
function blockScalar(i: number, indent: number): string {
  const folded = src.charCodeAt(i) === 0x3e
  let j = i + 1
  const strip = src.charCodeAt(j) === 0x2d
  if (strip) j++
  while (src.charCodeAt(j) === SPACE) j++
  if (src.charCodeAt(j) !== NL) giveUp()
  let line = j + 1
  let leadingBlank = 0
  let longestBlank = 0
  let width = -1
  let content = false
  let blanks = 0
  let value = ''
  for (;;) {
    if (line >= src.length) break
    const end = src.indexOf('\n', line)
    let s = line
    while (src.charCodeAt(s) === SPACE) s++
    const spaces = s - line
    if (s === end) {
      // A blank line: a line break of the scalar, unless no content follows (then chomped).
      if (width >= 0 && spaces > width) giveUp()
      longestBlank = Math.max(longestBlank, spaces)
      if (width < 0) leadingBlank++
      else blanks++
      line = end + 1
      continue
    }
    if (width < 0) {
      if (spaces <= indent) break
      width = spaces
      if (longestBlank > width) giveUp()
    } else if (spaces < width) break
    const text = src.slice(line + width, end)
    if (folded && text.charCodeAt(0) === SPACE) giveUp()
    if (content) value += folded ? (blanks === 0 ? ' ' : '\n'.repeat(blanks)) : '\n'.repeat(blanks + 1)
    value += text
    content = true
    blanks = 0
    line = end + 1
  }
  if (width < 0) giveUp()
  // The last content line is the text's last line and had no line feed: nothing to clip.
  if (unterminated && line >= src.length && blanks === 0) giveUp()
  // At the start of the line that ended the scalar.
  pos = line
  return '\n'.repeat(leadingBlank) + value + (strip ? '' : '\n')
}

/** After a quoted scalar or flow collection ending at `i`: only spaces and a comment, then the line's end. */
function endOfLine(i: number): void {
  const start = i
  while (src.charCodeAt(i) === SPACE) i++
  const ch = src.charCodeAt(i)
  if (ch === HASH && i > start) i = src.indexOf('\n', i)
  else if (ch !== NL) giveUp()
  pos = i + 1
}

/** Indicators a plain scalar may not start with; `-` may when a safe character follows. */
function plainStart(text: string, flow: boolean): boolean {
  if (text.length === 0) return false
  const ch = text.charCodeAt(0)
  switch (ch) {
    case 0x2d: {
      // -: only when followed by a character a plain scalar may hold (`-5`, `--ds`), never `- ` or `-,`
      if (text.length === 1) return false
      const next = text.charCodeAt(1)
      return next !== SPACE && !(flow && (next === 0x2c || next === 0x5b || next === 0x5d || next === 0x7b || next === 0x7d))
    }
    case 0x3f: // ?
    case 0x3a: // :
    case 0x2c: // ,
    case 0x5b: // [
    case 0x5d: // ]
    case 0x7b: // {
    case 0x7d: // }
    case HASH:
    case 0x26: // &
    case 0x2a: // *
    case 0x21: // !
    case 0x7c: // |
    case 0x3e: // >
    case 0x27: // '
    case 0x22: // "
    case 0x25: // %
    case 0x40: // @
    case 0x60: // `
    case SPACE:
      return false
    default:
      return true
  }
}

/** A double-quoted scalar on one line starting at `i`; common escapes only. Leaves `pos` past the closing quote. */
function doubleQuoted(i: number): string {
  const close = src.indexOf('"', i + 1)
  if (close >= 0 && close < src.indexOf('\n', i)) {
    const body = src.slice(i + 1, close)
    if (!body.includes('\\')) {
      pos = close + 1
      return body
    }
  }
  let j = i + 1
  let out = ''
  let from = j
  for (;;) {
    const ch = src.charCodeAt(j)
    if (ch === 0x22) break
    if (ch === NL) giveUp()
    if (ch === 0x5c) {
      out += src.slice(from, j)
      const e = src.charCodeAt(j + 1)
      if (e === 0x22 || e === 0x5c || e === 0x2f) out += String.fromCharCode(e)
      else if (e === 0x6e) out += '\n'
      else if (e === 0x74) out += '\t'
      else giveUp()
      j += 2
      from = j
      continue
    }
    j++
  }
  pos = j + 1
  return from === i + 1 ? src.slice(from, j) : out + src.slice(from, j)
}

/** A single-quoted scalar on one line starting at `i` (`''` is a quote). Leaves `pos` past the closing quote. */
function singleQuoted(i: number): string {
  const close = src.indexOf("'", i + 1)
  if (close >= 0 && close < src.indexOf('\n', i) && src.charCodeAt(close + 1) !== 0x27) {
    pos = close + 1
    return src.slice(i + 1, close)
  }
  let j = i + 1
  let out = ''
  let from = j
  for (;;) {
    const ch = src.charCodeAt(j)
    if (ch === NL) giveUp()
    if (ch === 0x27) {
      if (src.charCodeAt(j + 1) !== 0x27) break
      out += src.slice(from, j + 1)
      j += 2
      from = j
      continue
    }
    j++
  }
  pos = j + 1
  return out + src.slice(from, j)
}

/** A flow list or mapping starting at `i`, closed on the same line. Leaves `pos` past its closing bracket. */
function flowNode(i: number): Json {
  if (++depth > MAX_DEPTH) giveUp()
  const isList = src.charCodeAt(i) === 0x5b
  const close = isList ? 0x5d : 0x7d
  // Only the one that is read is made.
  const list: Json[] = isList ? [] : EMPTY_LIST
  const map: { [key: string]: Json } = isList ? EMPTY_MAP : {}
  let j = skipSpaces(i + 1)
  if (src.charCodeAt(j) === close) {
    pos = j + 1
    depth--
    return isList ? list : map
  }
  for (;;) {
    if (isList) {
      list.push(flowValue(j))
    } else {
      const at = j
      let key: Json
      const first = src.charCodeAt(at)
      if (first === 0x22) key = doubleQuoted(at)
      else if (first === 0x27) key = singleQuoted(at)
      else {
        FLOW_KEY.lastIndex = at
        if (!FLOW_KEY.test(src)) giveUp()
        key = resolvePlain(src.slice(at, FLOW_KEY.lastIndex))
        pos = FLOW_KEY.lastIndex
      }
      if (typeof key !== 'string' || key === '__proto__' || pos - at > MAX_KEY || Object.hasOwn(map, key)) giveUp()
      if (src.charCodeAt(pos) !== 0x3a || src.charCodeAt(pos + 1) !== SPACE) giveUp()
      map[key] = flowValue(skipSpaces(pos + 1))
    }
    j = skipSpaces(pos)
    const ch = src.charCodeAt(j)
    if (ch === close) break
    if (ch !== 0x2c) giveUp()
    j = skipSpaces(j + 1)
    // A trailing comma, or an empty entry: left to the careful parser.
    const after = src.charCodeAt(j)
    if (after === close || after === 0x2c) giveUp()
  }
  pos = j + 1
  depth--
  return isList ? list : map
}

function skipSpaces(j: number): number {
  while (src.charCodeAt(j) === SPACE) j++
  return j
}

/** One entry of a flow collection at `j`: quoted, nested, or a plain scalar up to `,` `]` `}`. Leaves `pos` past it. */
function flowValue(j: number): Json {
  const ch = src.charCodeAt(j)
  if (ch === 0x22) return doubleQuoted(j)
  if (ch === 0x27) return singleQuoted(j)
  if (ch === 0x5b || ch === 0x7b) return flowNode(j)
  // Up to `,` `]` `}`; the line's end, and characters whose meaning inside a flow scalar differs
  // between parsers (`:` `#` brackets quotes), give up.
  FLOW_PLAIN.lastIndex = j
  FLOW_PLAIN.test(src)
  const k = FLOW_PLAIN.lastIndex
  const c = src.charCodeAt(k)
  if (c !== 0x2c && c !== 0x5d && c !== 0x7d) giveUp()
  const text = src.slice(j, k).trimEnd()
  if (!plainStart(text, true)) giveUp()
  pos = k
  return resolvePlain(text)
}

const FLOW_PLAIN = /[^,\]}\n:#[{"']*/y
const INT = /^[-+]?[0-9]{1,15}$/
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/
/** Other numbers of the core schema (long integers, octal, hex, exponents, infinity, NaN): left to the careful parser. */
const OTHER_NUMBER = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/

/** The value of a plain scalar under the YAML 1.2 core schema, as the `yaml` package resolves it. */
function resolvePlain(text: string): Json {
  const ch = text.charCodeAt(0)
  switch (ch) {
    case 0x7e: // ~
      return text.length === 1 ? null : text
    case 0x6e: // n
    case 0x4e: // N
      return text === 'null' || text === 'Null' || text === 'NULL' ? null : text
    case 0x74: // t
    case 0x54: // T
      return text === 'true' || text === 'True' || text === 'TRUE' ? true : text
    case 0x66: // f
    case 0x46: // F
      return text === 'false' || text === 'False' || text === 'FALSE' ? false : text
  }
  if ((ch >= 0x30 && ch <= 0x39) || ch === 0x2b || ch === 0x2d || ch === 0x2e) {
    if (INT.test(text)) return parseInt(text, 10)
    if (FLOAT.test(text)) return parseFloat(text)
    if (OTHER_NUMBER.test(text)) giveUp()
  }
  return text
}
