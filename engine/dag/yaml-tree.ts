/**
 * The checks that need the whole YAML tree (duplicate keys, tags, aliases and their expansion,
 * depth) and the conversion of the tree into plain values.
 */
import { isAlias, isMap, isPair, isScalar, isSeq } from 'yaml'
import type { Alias, Document, Node as YamlNode, Pair } from 'yaml'
import { LIMITS, ALLOWED_TAGS } from './limits.ts'
import type { Json, LoadProblem, Position } from './yaml-load.ts'

export const START: Position = { line: 1, column: 1 }

/** Every key that repeats an earlier key of the same mapping (as strings: `1` and `"1"` collide too). */
export function duplicateKeys(doc: Document.Parsed, positionAt: (o: number) => Position): LoadProblem[] {
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

export function dedupe(problems: LoadProblem[]): LoadProblem[] {
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
export function checkTree(doc: Document.Parsed, positionAt: (o: number) => Position): LoadProblem[] {
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
export function toJson(node: YamlNode | null, doc: Document.Parsed): Json {
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

export function keyString(key: YamlNode | null): string {
  if (key === null) return ''
  if (isScalar(key)) return key.value === null || key.value === undefined ? '' : String(key.value)
  return String(key)
}
