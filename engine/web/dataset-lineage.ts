/**
 * A dataset version's lineage as a graph: the dataset versions, feature view definitions and model
 * versions (predict.batch's scores) it was computed from, their inputs in turn, and the sources (files, URLs, connections) that ingests and
 * imports read. Walked breadth-first, each node once, bounded.
 */
import type { DatasetInput, DatasetVersionRow } from '../store/datasets.ts'
import { datasetVersionJson } from '../json-shapes.ts'

/** The most nodes a graph gets; beyond, `truncated` is true. */
export const MAX_LINEAGE_NODES = 200

export interface LineageNode {
  id: string
  kind: 'dataset' | 'feature_view' | 'model' | 'source'
  name: string
  version?: number
  missing?: boolean
  produced_kind?: string
  produced_by?: { run_id: string; task_id: string; run_pruned: boolean } | null
  rows?: number
  created_at?: string
}

/**
 * Breadth-first through inputs; a version is visited once however many paths reach it. A feature view
 * leads on to the source dataset versions its definition was materialized from (`featureSources`).
 */
export async function lineage(
  root: DatasetVersionRow,
  read: (name: string, version: number) => Promise<DatasetVersionRow | undefined>,
  featureSources: (view: string, definitionVersion: number) => Promise<{ dataset: string; version: number }[]> = async () => [],
): Promise<{ nodes: LineageNode[]; edges: { from: string; to: string }[]; truncated: boolean }> {
  const datasetNode = (row: DatasetVersionRow): LineageNode => {
    const json = datasetVersionJson(row)
    return { id: `dataset:${row.dataset}@${row.version}`, kind: 'dataset', name: row.dataset, version: row.version, produced_kind: row.producedKind, produced_by: json.produced_by, rows: row.rows, created_at: json.created_at }
  }
  const nodes = new Map<string, LineageNode>([[`dataset:${root.dataset}@${root.version}`, datasetNode(root)]])
  const edges: { from: string; to: string }[] = []
  const seenEdges = new Set<string>()
  const addEdge = (from: string, to: string) => {
    const key = `${from} ${to}`
    if (!seenEdges.has(key)) edges.push({ from, to })
    seenEdges.add(key)
  }
  // Where an ingest or an import read the rows: the start of the graph.
  const addSource = (row: DatasetVersionRow) => {
    const name = sourceLabel(row.details)
    if (name === undefined || nodes.size >= MAX_LINEAGE_NODES) return
    const id = `source:${row.dataset}@${row.version}`
    nodes.set(id, { id, kind: 'source', name })
    addEdge(id, `dataset:${row.dataset}@${row.version}`)
  }
  addSource(root)
  // Each entry: a node already in `nodes` and the inputs it was made from.
  const queue: { id: string; inputs: () => Promise<DatasetInput[]> }[] = [{ id: nodes.keys().next().value!, inputs: async () => root.inputs }]
  let truncated = false
  while (queue.length > 0) {
    const { id: to, inputs } = queue.shift()!
    const list = await inputs()
    for (const input of (Array.isArray(list) ? list : []) as DatasetInput[]) {
      const from = inputId(input)
      if (from === undefined) continue
      if (nodes.has(from)) {
        addEdge(from, to)
        continue
      }
      if (nodes.size >= MAX_LINEAGE_NODES) {
        truncated = true
        continue
      }
      addEdge(from, to)
      if ('feature_view' in input) {
        nodes.set(from, { id: from, kind: 'feature_view', name: input.feature_view, version: input.definition_version })
        queue.push({ id: from, inputs: () => featureSources(input.feature_view, input.definition_version) })
        continue
      }
      if ('model' in input) {
        nodes.set(from, { id: from, kind: 'model', name: input.model, version: input.model_version })
        continue
      }
      const found = await read(input.dataset, input.version)
      if (!found) nodes.set(from, { id: from, kind: 'dataset', name: input.dataset, version: input.version, missing: true })
      else {
        nodes.set(from, datasetNode(found))
        addSource(found)
        queue.push({ id: from, inputs: async () => found.inputs })
      }
    }
  }
  return { nodes: [...nodes.values()], edges, truncated }
}

/** The source recorded in a version's details by ingest (`source: {kind, path|url|connection}`) or import (`file`). */
function sourceLabel(details: Record<string, unknown> | null | undefined): string | undefined {
  if (!details || typeof details !== 'object') return undefined
  if (typeof details.file === 'string') return `file ${details.file}`
  const source = details.source as Record<string, unknown> | undefined
  if (!source || typeof source !== 'object') return undefined
  const kind = typeof source.kind === 'string' ? source.kind : 'source'
  if (typeof source.path === 'string') return `${kind} ${source.path}`
  if (typeof source.url === 'string') return `${kind} ${source.url}`
  if (typeof source.connection === 'string') return `${kind} connection ${source.connection}`
  return undefined
}

function inputId(input: DatasetInput): string | undefined {
  if (typeof input !== 'object' || input === null) return undefined
  if ('dataset' in input && typeof input.dataset === 'string' && Number.isInteger(input.version)) return `dataset:${input.dataset}@${input.version}`
  if ('feature_view' in input && typeof input.feature_view === 'string' && Number.isInteger(input.definition_version)) return `feature_view:${input.feature_view}@${input.definition_version}`
  if ('model' in input && typeof input.model === 'string' && Number.isInteger(input.model_version)) return `model:${input.model}@${input.model_version}`
  return undefined
}
