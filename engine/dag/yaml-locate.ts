/** Finding the YAML node (and so the source position) of a path such as `tasks.train.params`. */
import { isAlias, isMap, isSeq } from 'yaml'
import type { Document, Node as YamlNode, Pair, YAMLMap } from 'yaml'
import type { PathSegment, Position } from './yaml-load.ts'
import { START, keyString } from './yaml-tree.ts'

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

export function findNode(doc: Document.Parsed, path: readonly PathSegment[]): Found | undefined {
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

export function locateNode(doc: Document.Parsed, path: readonly PathSegment[], part: 'key' | 'value', positionAt: (o: number) => Position): Position {
  const found = findNode(doc, path)
  if (!found) return START
  const pick = (node: YamlNode | undefined): Position | undefined => (node?.range ? positionAt(node.range[0]) : undefined)
  if (found.parent) return pick(found.parentKey) ?? pick(found.parent) ?? START
  if (part === 'key') return pick(found.key) ?? pick(found.value) ?? START
  return pick(found.value) ?? pick(found.key) ?? START
}
