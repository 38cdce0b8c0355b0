/**
 * The scalars of the plain-YAML reader (yaml-plain.ts): plain ones resolved under the YAML 1.2 core
 * schema as the `yaml` package resolves them, one-line single- and double-quoted ones, and literal
 * and folded block scalars. Each reads from the shared cursor and gives up on the forms it leaves to
 * the other paths.
 */
import type { Json } from './yaml-load.ts'
import { HASH, NL, SPACE, cursor, giveUp } from './yaml-plain-cursor.ts'

/**
 * A literal (`|`) or folded (`>`) block scalar whose header starts at `i`, clipped or stripped (`-`)
 * of its final line break; its lines are indented more than `indent`, by as much as the first one.
 * Gives up on the forms whose details parsers are likeliest to differ on: keep (`+`), an explicit
 * indentation, a comment after the header, blank lines with more spaces than the indentation, more
 * indented lines in a folded scalar, no content, and a scalar that ends the file without a line
 * feed. Leaves `pos` at the start of the first line after it.
 */
export function blockScalar(i: number, indent: number): string {
  const src = cursor.src
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
  if (cursor.unterminated && line >= src.length && blanks === 0) giveUp()
  // At the start of the line that ended the scalar.
  cursor.pos = line
  return '\n'.repeat(leadingBlank) + value + (strip ? '' : '\n')
}

/** Indicators a plain scalar may not start with; `-` may when a safe character follows. */
export function plainStart(text: string, flow: boolean): boolean {
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
export function doubleQuoted(i: number): string {
  const src = cursor.src
  const close = src.indexOf('"', i + 1)
  if (close >= 0 && close < src.indexOf('\n', i)) {
    const body = src.slice(i + 1, close)
    if (!body.includes('\\')) {
      cursor.pos = close + 1
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
  cursor.pos = j + 1
  return from === i + 1 ? src.slice(from, j) : out + src.slice(from, j)
}

/** A single-quoted scalar on one line starting at `i` (`''` is a quote). Leaves `pos` past the closing quote. */
export function singleQuoted(i: number): string {
  const src = cursor.src
  const close = src.indexOf("'", i + 1)
  if (close >= 0 && close < src.indexOf('\n', i) && src.charCodeAt(close + 1) !== 0x27) {
    cursor.pos = close + 1
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
  cursor.pos = j + 1
  return out + src.slice(from, j)
}

const INT = /^[-+]?[0-9]{1,15}$/
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/
/** Other numbers of the core schema (long integers, octal, hex, exponents, infinity, NaN): left to the careful parser. */
const OTHER_NUMBER = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/

/** The value of a plain scalar under the YAML 1.2 core schema, as the `yaml` package resolves it. */
export function resolvePlain(text: string): Json {
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
