/**
 * The one-line flow collections of the plain-YAML reader (yaml-plain.ts): `[a, b]` lists and
 * `{ k: v }` mappings, nested, closed on the line they open. Entries with a meaning that differs
 * between parsers (trailing commas, empty entries, `:` `#` brackets or quotes in plain scalars) make
 * it give up.
 */
import type { Json } from './yaml-load.ts'
import { MAX_DEPTH, MAX_KEY, SPACE, cursor, giveUp } from './yaml-plain-cursor.ts'
import { doubleQuoted, plainStart, resolvePlain, singleQuoted } from './yaml-plain-scalars.ts'

/** Placeholders for the flow collection that is not being read (never written to). */
const EMPTY_LIST: Json[] = []
const EMPTY_MAP: { [key: string]: Json } = {}

/** The same name as a key inside a flow mapping, without the colon. */
const FLOW_KEY = /[A-Za-z0-9_][A-Za-z0-9_.\/-]*/y
const FLOW_PLAIN = /[^,\]}\n:#[{"']*/y

/** A flow list or mapping starting at `i`, closed on the same line. Leaves `pos` past its closing bracket. */
export function flowNode(i: number): Json {
  const src = cursor.src
  if (++cursor.depth > MAX_DEPTH) giveUp()
  const isList = src.charCodeAt(i) === 0x5b
  const close = isList ? 0x5d : 0x7d
  // Only the one that is read is made.
  const list: Json[] = isList ? [] : EMPTY_LIST
  const map: { [key: string]: Json } = isList ? EMPTY_MAP : {}
  let j = skipSpaces(i + 1)
  if (src.charCodeAt(j) === close) {
    cursor.pos = j + 1
    cursor.depth--
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
        cursor.pos = FLOW_KEY.lastIndex
      }
      if (typeof key !== 'string' || key === '__proto__' || cursor.pos - at > MAX_KEY || Object.hasOwn(map, key)) giveUp()
      if (src.charCodeAt(cursor.pos) !== 0x3a || src.charCodeAt(cursor.pos + 1) !== SPACE) giveUp()
      map[key] = flowValue(skipSpaces(cursor.pos + 1))
    }
    j = skipSpaces(cursor.pos)
    const ch = src.charCodeAt(j)
    if (ch === close) break
    if (ch !== 0x2c) giveUp()
    j = skipSpaces(j + 1)
    // A trailing comma, or an empty entry: left to the careful parser.
    const after = src.charCodeAt(j)
    if (after === close || after === 0x2c) giveUp()
  }
  cursor.pos = j + 1
  cursor.depth--
  return isList ? list : map
}

function skipSpaces(j: number): number {
  const src = cursor.src
  while (src.charCodeAt(j) === SPACE) j++
  return j
}

/** One entry of a flow collection at `j`: quoted, nested, or a plain scalar up to `,` `]` `}`. Leaves `pos` past it. */
function flowValue(j: number): Json {
  const src = cursor.src
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
  cursor.pos = k
  return resolvePlain(text)
}
