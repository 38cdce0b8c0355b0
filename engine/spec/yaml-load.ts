/**
 * Turns the bytes of one YAML file into a plain JSON-like value plus a way to find the source position
 * of any path in it. The `yaml` package is used rather than js-yaml because it keeps a full AST with
 * source ranges for every key and value, which exact `file:line:col` diagnostics need.
 *
 * Every resource limit is checked before the work it protects: size before decoding, flow nesting
 * before parsing, alias count and expanded size before building values.
 */
import { parseAllDocuments, isAlias, isCollection, isMap, isNode, isPair, isScalar, isSeq } from 'yaml'
import type { Alias, Document, Node as YamlNode, Pair, YAMLError, YAMLMap } from 'yaml'
import type { ErrorCode } from '../errors.ts'
import { LIMITS, ALLOWED_TAGS, findDeepFlowNesting, findForbiddenCharacter } from './limits.ts'

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
export type PathSegment = string | number

export interface Position {
  line: number
  column: number
}

export interface LoadProblem {
  code: ErrorCode
  message: string
  position: Position
  path: PathSegment[]
}

export interface LoadedYaml {
  value: Json
  /** Position of the node at `path`; `key` selects the mapping key rather than the value. */
  locate(path: readonly PathSegment[], part?: 'key' | 'value'): Position
  /** Source text of the scalar at `path`, with its start offset, to place template errors inside it. */
  sourceOf(path: readonly PathSegment[]): { text: string; offset: number } | undefined
  positionAt(offset: number): Position
}

export type LoadResult = { ok: true; yaml: LoadedYaml } | { ok: false; problems: LoadProblem[] }

const START: Position = { line: 1, column: 1 }
const fail = (code: ErrorCode, message: string, position: Position = START, path: PathSegment[] = []): LoadResult => ({
  ok: false,
  problems: [{ code, message, position, path }],
})

const decoder = new TextDecoder('utf-8', { fatal: true })

export function loadYaml(bytes: Uint8Array): LoadResult {
  if (bytes.byteLength > LIMITS.maxFileBytes) {
    return fail('FILE_TOO_LARGE', `file is ${bytes.byteLength} bytes; the limit is ${LIMITS.maxFileBytes} (1 MiB)`)
  }
  let text: string
  try {
    text = decoder.decode(bytes)
  } catch {
    const lossy = new TextDecoder('utf-8').decode(bytes)
    const at = Math.max(0, lossy.indexOf('\uFFFD'))
    return fail('INVALID_ENCODING', 'file is not valid UTF-8 text', positionIn(lossy, at))
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  return loadYamlText(text)
}

export function loadYamlText(text: string): LoadResult {
  const forbidden = findForbiddenCharacter(text)
  if (forbidden !== undefined) {
    const hex = text.charCodeAt(forbidden).toString(16).padStart(4, '0')
    return fail('INVALID_ENCODING', `control character U+${hex} is not allowed in YAML; is this a binary file?`, positionIn(text, forbidden))
  }
  const deep = findDeepFlowNesting(text, LIMITS.maxDepth)
  if (deep !== undefined) {
    return fail('DEPTH_LIMIT', `nesting is deeper than ${LIMITS.maxDepth} levels`, positionIn(text, deep))
  }

  const docs = parseAllDocuments(text, {
    prettyErrors: false,
    // The parser's own duplicate check compares every key with every other (seconds for 30,000 keys);
    // duplicateKeys() below does it with one set per mapping.
    uniqueKeys: false,
    merge: false,
    schema: 'core',
    strict: true,
    stringKeys: false,
  })
  // Computed from the text rather than the parser's LineCounter, which misses line starts in some
  // broken documents and then reports columns past the end of a line.
  const lineStarts = [0]
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1)
  const positionAt = (offset: number): Position => {
    let low = 0
    let high = lineStarts.length - 1
    while (low < high) {
      const mid = (low + high + 1) >> 1
      if (lineStarts[mid]! <= offset) low = mid
      else high = mid - 1
    }
    return { line: low + 1, column: Math.max(0, offset - lineStarts[low]!) + 1 }
  }
  if (!Array.isArray(docs) || docs.length === 0) return fail('EMPTY_DOCUMENT', 'file is empty; expected a mapping such as `dag: my_dag`')

  const problems: LoadProblem[] = []
  let lostTrack = false
  for (const error of docs[0]!.errors) {
    if (error.code === 'RESOURCE_EXHAUSTION') continue
    // Once the parser has lost the structure it reports every later token as unexpected (hundreds
    // of errors for one bad indent); the first says where reading stopped, the rest are noise.
    const stray = /^Unexpected .* token in YAML stream/.test(error.message)
    if (stray && lostTrack) continue
    lostTrack ||= stray
    problems.push(fromYamlError(error, (offset) => positionAt(syntaxOffset(docs[0]!, text, error, offset))))
  }
  problems.push(...duplicateKeys(docs[0]!, positionAt))
  const exhausted = docs[0]!.errors.find((e) => e.code === 'RESOURCE_EXHAUSTION')
  if (exhausted) {
    // The parser ran out of stack on a block nesting hundreds deep (flow nesting is refused before
    // parsing). The levels it did build are enough to point at the first one over the limit.
    const deep = checkTree(docs[0]!, positionAt).find((p) => p.code === 'DEPTH_LIMIT')
    problems.push(deep ?? { code: 'DEPTH_LIMIT', message: `nesting is deeper than ${LIMITS.maxDepth} levels`, position: positionAt(exhausted.pos[0]), path: [] })
  }
  if (docs.length > 1) {
    const second = docs[1]!
    const offset = second.range[0]
    problems.push({ code: 'MULTIPLE_DOCUMENTS', message: 'file holds more than one YAML document; put one DAG per file', position: positionAt(offset), path: [] })
  }
  const doc = docs[0]!
  for (const warning of doc.warnings) {
    if (warning.code === 'TAG_RESOLVE_FAILED') problems.push(fromYamlError(warning, positionAt))
  }
  if (problems.length > 0) return { ok: false, problems: dedupe(problems) }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null && doc.contents.range[0] === doc.contents.range[1])) {
    return fail('EMPTY_DOCUMENT', 'file is empty; expected a mapping such as `dag: my_dag`')
  }

  const treeProblems = checkTree(doc, positionAt)
  if (treeProblems.length > 0) return { ok: false, problems: treeProblems }

  const value = toJson(doc.contents as YamlNode, doc)
  return {
    ok: true,
    yaml: {
      value,
      positionAt,
      locate: (path, part = 'value') => locateNode(doc, path, part, positionAt),
      sourceOf: (path) => {
        const found = findNode(doc, path)
        const node = found?.value
        if (!node || !isScalar(node) || !node.range) return undefined
        return { text: text.slice(node.range[0], node.range[1]), offset: node.range[0] }
      },
    },
  }
}

function fromYamlError(error: { code: string; message: string; pos: [number, number] }, positionAt: (o: number) => Position): LoadProblem {
  const firstLine = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
  const position = positionAt(error.pos[0])
  switch (error.code) {
    case 'DUPLICATE_KEY':
      return { code: 'DUPLICATE_KEY', message: 'duplicate key: each key may appear once in a mapping', position, path: [] }
    case 'TAB_AS_INDENT':
      return { code: 'YAML_TAB_INDENT', message: 'tabs are not allowed as indentation; indent with spaces', position, path: [] }
    case 'TAG_RESOLVE_FAILED':
      return { code: 'CUSTOM_TAG', message: `${firstLine.replace('Unresolved tag: tag:yaml.org,2002:', 'Unresolved tag: !!')}; custom tags are not allowed`, position, path: [] }
    case 'RESOURCE_EXHAUSTION':
      return { code: 'DEPTH_LIMIT', message: `nesting is deeper than ${LIMITS.maxDepth} levels`, position, path: [] }
    case 'BAD_ALIAS':
      return { code: 'UNDEFINED_ALIAS', message: firstLine, position, path: [] }
    default:
      return { code: 'YAML_SYNTAX', message: firstLine || 'invalid YAML', position, path: [] }
  }
}

/**
 * Where a syntax error is shown. The parser notices an unclosed quote or flow collection only where
 * the file or block ends, often many lines later: point at the quote or bracket that opened it.
 * Indentation errors point at the start of the line: move to the first character of the content.
 */
function syntaxOffset(doc: Document.Parsed, text: string, error: YAMLError, offset: number): number {
  if (error.code === 'TAB_AS_INDENT') return offset
  const opener = unclosedOpener(doc, text, error.message, offset)
  if (opener !== undefined) return opener
  let at = offset
  while (text[at] === ' ') at++
  return text[at] === '\n' || at >= text.length ? offset : at
}

function unclosedOpener(doc: Document.Parsed, text: string, message: string, offset: number): number | undefined {
  const quote = /^Missing closing (["'])quote/.exec(message)?.[1]
  const close = /^Flow (?:sequence|map) .*end with an? ([\]}])/.exec(message)?.[1]
  if (quote === undefined && close === undefined) return undefined
  const open = close === ']' ? '[' : '{'
  let best: number | undefined
  const stack: unknown[] = [doc.contents]
  while (stack.length > 0) {
    const node = stack.pop()
    if (isPair(node)) {
      stack.push(node.key, node.value)
      continue
    }
    if (!isNode(node) || !node.range) continue
    const [start, end] = node.range
    if (start < offset && (best === undefined || start > best)) {
      if (quote !== undefined && isScalar(node) && text[start] === quote) {
        const source = text.slice(start, end).trimEnd()
        if (source.length < 2 || !source.endsWith(quote)) best = start
      }
      if (close !== undefined && isCollection(node) && node.flow === true && text[start] === open) {
        // Closed when the bracket follows the last item (the item itself may end with a nested one).
        const last = node.items[node.items.length - 1] as YamlNode | Pair | undefined
        const lastNode = (isPair(last) ? (last.value ?? last.key) : last) as YamlNode | null | undefined
        const after = lastNode?.range ? lastNode.range[1] : start + 1
        if (!text.slice(after, end).includes(close)) best = start
      }
    }
    if (isCollection(node)) stack.push(...node.items)
  }
  return best
}

/** Every key that repeats an earlier key of the same mapping (as strings: `1` and `"1"` collide too). */
function duplicateKeys(doc: Document.Parsed, positionAt: (o: number) => Position): LoadProblem[] {
  const problems: LoadProblem[] = []
  const stack: unknown[] = [doc.contents]
  while (stack.length > 0) {
    const node = stack.pop()
    if (isMap(node)) {
      const seen = new Set<string>()
      for (const pair of node.items) {
        const key = pair.key as YamlNode | null
        if (key === null || isScalar(key)) {
          const name = keyString(key)
          if (seen.has(name)) {
            const at = key?.range ? positionAt(key.range[0]) : START
            problems.push({ code: 'DUPLICATE_KEY', message: `duplicate key "${name}": each key may appear once in a mapping`, position: at, path: [] })
          }
          seen.add(name)
        }
        stack.push(pair.value)
      }
    } else if (isSeq(node)) {
      stack.push(...node.items)
    }
  }
  return problems
}

function dedupe(problems: LoadProblem[]): LoadProblem[] {
  const seen = new Set<string>()
  return problems.filter((p) => {
    const key = `${p.position.line}:${p.position.column}:${p.code}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/**
 * One iterative pass over the AST: tags, alias count, anchors that exist, depth, and the size the
 * document would have once every alias is expanded (memoised per anchored node, so linear).
 */
function checkTree(doc: Document.Parsed, positionAt: (o: number) => Position): LoadProblem[] {
  const problems: LoadProblem[] = []
  const at = (node: YamlNode | Pair): Position => {
    const range = isPair(node) ? (node.key as YamlNode | null)?.range : node.range
    return range ? positionAt(range[0]) : START
  }
  let aliases = 0
  // Children are pushed in reverse so nodes are visited in file order: the alias reported as the
  // 101st, or the first node too deep, is the one a reader counting from the top would find.
  const stack: { node: YamlNode; depth: number }[] = [{ node: doc.contents as YamlNode, depth: 1 }]
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!
    // Depth counts collections: 64 nested mappings or lists are allowed, with scalars inside the deepest.
    if (depth > LIMITS.maxDepth && (isMap(node) || isSeq(node))) {
      problems.push({ code: 'DEPTH_LIMIT', message: `nesting is deeper than ${LIMITS.maxDepth} levels`, position: at(node), path: [] })
      break
    }
    if (node.tag !== undefined && !ALLOWED_TAGS.has(node.tag)) {
      const shown = node.tag.replace('tag:yaml.org,2002:', '!!')
      problems.push({ code: 'CUSTOM_TAG', message: `tag ${shown} is not allowed; cairn reads plain YAML only`, position: at(node), path: [] })
    }
    if (isAlias(node)) {
      aliases++
      if (aliases > LIMITS.maxAliases) {
        problems.push({ code: 'ALIAS_LIMIT', message: `more than ${LIMITS.maxAliases} aliases in one file`, position: at(node), path: [] })
        break
      }
      if (node.resolve(doc) === undefined) {
        problems.push({ code: 'UNDEFINED_ALIAS', message: `alias *${node.source} has no anchor &${node.source} before it`, position: at(node), path: [] })
      }
      continue
    }
    if (isMap(node)) {
      for (const pair of [...node.items].reverse()) {
        const key = pair.key as YamlNode | null
        if (key !== null && !isScalar(key)) {
          problems.push({ code: 'INVALID_TYPE', message: 'mapping keys must be plain strings, not collections or aliases', position: at(key), path: [] })
          continue
        }
        if (pair.value) stack.push({ node: pair.value as YamlNode, depth: depth + 1 })
        if (key) stack.push({ node: key, depth: depth + 1 })
      }
    } else if (isSeq(node)) {
      for (const item of [...node.items].reverse()) if (item) stack.push({ node: item as YamlNode, depth: depth + 1 })
    }
  }
  if (problems.length > 0) return problems

  if (aliases > 0) {
    const expansion: Expansion = { sizes: new Map(), recursive: undefined, huge: undefined }
    const size = expandedSize(doc.contents as YamlNode, doc, expansion, 0)
    if (expansion.recursive) {
      const name = expansion.recursive.source
      return [{ code: 'ALIAS_LIMIT', message: `alias *${name} is inside the node anchored as &${name}, so it would expand forever`, position: at(expansion.recursive), path: [] }]
    }
    if (size > LIMITS.maxExpandedNodes) {
      const position = expansion.huge ? at(expansion.huge) : START
      return [{ code: 'ALIAS_LIMIT', message: `aliases expand this document to more than ${LIMITS.maxExpandedNodes} nodes (an alias bomb?)`, position, path: [] }]
    }
  }
  return problems
}

interface Expansion {
  /** Expanded size per node; IN_PROGRESS while its own expansion is being computed. */
  sizes: Map<YamlNode, number>
  /** An alias that points at a node containing it (`a: &x { b: *x }`): infinite, and a stack overflow when built. */
  recursive: Alias | undefined
  /** The innermost node whose expansion alone is over the limit (the list of aliases that explodes). */
  huge: YamlNode | undefined
}

const IN_PROGRESS = -1

/** Depth is bounded by checkTree (<= 64 plus alias hops, each alias pointing backwards), so recursion is safe. */
function expandedSize(node: YamlNode, doc: Document.Parsed, expansion: Expansion, hops: number): number {
  const known = expansion.sizes.get(node)
  if (known === IN_PROGRESS) return LIMITS.maxExpandedNodes + 1
  if (known !== undefined) return known
  expansion.sizes.set(node, IN_PROGRESS)
  let total = 1
  if (isAlias(node)) {
    const target = (node as Alias).resolve(doc) as YamlNode | undefined
    if (target && expansion.sizes.get(target) === IN_PROGRESS) {
      expansion.recursive ??= node as Alias
      total = LIMITS.maxExpandedNodes + 1
    } else {
      total = target && hops < LIMITS.maxAliases ? expandedSize(target, doc, expansion, hops + 1) : 1
    }
  } else if (isMap(node)) {
    for (const pair of node.items) {
      total += 1 + (pair.value ? expandedSize(pair.value as YamlNode, doc, expansion, hops) : 0)
      if (total > LIMITS.maxExpandedNodes) break
    }
  } else if (isSeq(node)) {
    for (const item of node.items) {
      total += item ? expandedSize(item as YamlNode, doc, expansion, hops) : 1
      if (total > LIMITS.maxExpandedNodes) break
    }
  }
  if (total > LIMITS.maxExpandedNodes) expansion.huge ??= node
  total = Math.min(total, LIMITS.maxExpandedNodes + 1)
  expansion.sizes.set(node, total)
  return total
}

/** Builds plain values. Keys such as `__proto__` become own data properties, never prototype changes. */
function toJson(node: YamlNode | null, doc: Document.Parsed): Json {
  if (node === null) return null
  if (isAlias(node)) return toJson(node.resolve(doc) as YamlNode, doc)
  if (isScalar(node)) {
    const v = node.value
    if (v === null || v === undefined) return null
    if (typeof v === 'bigint') return Number(v)
    if (typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v
    return String(v)
  }
  if (isMap(node)) {
    const out: { [key: string]: Json } = {}
    for (const pair of node.items) {
      const key = keyString(pair.key as YamlNode | null)
      Object.defineProperty(out, key, { value: toJson(pair.value as YamlNode | null, doc), enumerable: true, writable: true, configurable: true })
    }
    return out
  }
  if (isSeq(node)) return node.items.map((item) => toJson(item as YamlNode | null, doc))
  return null
}

function keyString(key: YamlNode | null): string {
  if (key === null) return ''
  if (isScalar(key)) return key.value === null || key.value === undefined ? '' : String(key.value)
  return String(key)
}

interface Found {
  key?: YamlNode
  value?: YamlNode
  /** The deepest node reached when the path does not exist (e.g. a missing key's parent). */
  parent: YamlNode | undefined
  parentKey?: YamlNode
}

const pairIndexes = new WeakMap<YAMLMap, Map<string, Pair>>()

/** The pair with this key (the first, as the value holds). Indexed, so thousands of diagnostics on a big mapping stay linear. */
function pairOf(map: YAMLMap, key: string): Pair | undefined {
  if (map.items.length < 16) return map.items.find((p) => keyString(p.key as YamlNode | null) === key)
  let index = pairIndexes.get(map)
  if (!index) {
    index = new Map()
    for (const pair of map.items) {
      const name = keyString(pair.key as YamlNode | null)
      if (!index.has(name)) index.set(name, pair)
    }
    pairIndexes.set(map, index)
  }
  return index.get(key)
}

function findNode(doc: Document.Parsed, path: readonly PathSegment[]): Found | undefined {
  let current = doc.contents as YamlNode | undefined
  let currentKey: YamlNode | undefined
  for (const segment of path) {
    if (current && isAlias(current)) current = current.resolve(doc) as YamlNode | undefined
    if (!current) return undefined
    if (isMap(current)) {
      const pair = pairOf(current, String(segment))
      if (!pair) return { parent: current, parentKey: currentKey }
      currentKey = (pair.key as YamlNode | null) ?? undefined
      current = (pair.value as YamlNode | null) ?? undefined
      if (!current) return { key: currentKey, value: undefined, parent: undefined }
    } else if (isSeq(current) && typeof segment === 'number') {
      const item = current.items[segment] as YamlNode | undefined
      if (!item) return { parent: current, parentKey: currentKey }
      currentKey = undefined
      current = item
    } else {
      return { parent: current, parentKey: currentKey }
    }
  }
  return { key: currentKey, value: current, parent: undefined }
}

function locateNode(doc: Document.Parsed, path: readonly PathSegment[], part: 'key' | 'value', positionAt: (o: number) => Position): Position {
  const found = findNode(doc, path)
  if (!found) return START
  const pick = (node: YamlNode | undefined): Position | undefined => (node?.range ? positionAt(node.range[0]) : undefined)
  if (found.parent) return pick(found.parentKey) ?? pick(found.parent) ?? START
  if (part === 'key') return pick(found.key) ?? pick(found.value) ?? START
  return pick(found.value) ?? pick(found.key) ?? START
}

function positionIn(text: string, offset: number): Position {
  let line = 1
  let lineStart = 0
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: offset - lineStart + 1 }
}

