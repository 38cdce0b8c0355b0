/**
 * Turns the bytes of one YAML file into a plain JSON-like value plus a way to find the source position
 * of any path in it. The `yaml` package is used rather than js-yaml because it keeps a full AST with
 * source ranges for every key and value, which exact `file:line:col` diagnostics need.
 *
 * Every resource limit is checked before the work it protects: size before decoding, flow nesting
 * before parsing, alias count and expanded size before building values.
 */
import { parseAllDocuments, isCollection, isNode, isPair, isScalar } from 'yaml'
import type { Document, Node as YamlNode, Pair, YAMLError } from 'yaml'
import type { ErrorCode } from '../errors.ts'
import { LIMITS, findDeepFlowNesting, findForbiddenCharacter } from './limits.ts'
import { START, checkTree, dedupe, duplicateKeys, toJson } from './yaml-tree.ts'
import { findNode, locateNode } from './yaml-locate.ts'

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

function loadYamlText(text: string): LoadResult {
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

