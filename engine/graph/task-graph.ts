/**
 * The dependency graph of one DAG's tasks (graphology), edges pointing downstream:
 * `a -> b` means b depends on a, so a runs first. Every traversal of task dependencies in cairn
 * (validation, scheduling, clearing, templates, the API's task order) goes through this module.
 */
import { createRequire } from 'node:module'
import type { DirectedGraph as DirectedGraphType } from 'graphology'
import type * as GraphologyDag from 'graphology-dag'

/**
 * graphology is loaded on first use: the validator answers its questions with lightGraph and builds
 * a graphology graph only to name the cycles of a DAG that has some, so `cairn validate` over valid
 * files never loads it.
 */
const requireHere = createRequire(import.meta.url)
let library: { DirectedGraph: typeof DirectedGraphType; hasCycle: typeof GraphologyDag.hasCycle; topologicalSort: typeof GraphologyDag.topologicalSort } | undefined
function graphology(): NonNullable<typeof library> {
  if (!library) {
    const { DirectedGraph } = requireHere('graphology') as { DirectedGraph: typeof DirectedGraphType }
    const { hasCycle, topologicalSort } = requireHere('graphology-dag') as typeof GraphologyDag
    library = { DirectedGraph, hasCycle, topologicalSort }
  }
  return library
}

export interface TaskNode {
  id: string
  dependsOn: readonly string[]
}

export type TaskGraph = DirectedGraphType

const graphs = new WeakMap<readonly TaskNode[], TaskGraph>()

/** The graph of a task list, built once per list (a loaded DAG version's tasks never change). */
export function taskGraphOf(tasks: readonly TaskNode[]): TaskGraph {
  let graph = graphs.get(tasks)
  if (!graph) graphs.set(tasks, (graph = buildTaskGraph(tasks)))
  return graph
}

/** Builds the graph; dependencies naming unknown tasks or the task itself are left out (the validator reports them). */
export function buildTaskGraph(tasks: readonly TaskNode[]): TaskGraph {
  const graph = new (graphology().DirectedGraph)()
  for (const task of tasks) graph.mergeNode(task.id)
  for (const task of tasks) {
    for (const upstream of task.dependsOn) {
      if (upstream !== task.id && graph.hasNode(upstream)) graph.mergeEdge(upstream, task.id)
    }
  }
  return graph
}

/**
 * One cycle per strongly connected component, as the list of task ids in run order that closes on
 * its first id: `['a', 'b', 'c', 'a']`. Each cycle starts at the component's task that comes first
 * in `order` (file order), so reports are stable.
 */
export function findCycles(graph: TaskGraph, order: readonly string[]): string[][] {
  if (!graphology().hasCycle(graph)) return []
  const rank = new Map(order.map((id, i) => [id, i]))
  const cycles: string[][] = []
  for (const component of stronglyConnected(graph)) {
    if (component.length < 2) continue
    const members = new Set(component)
    const start = component.reduce((a, b) => ((rank.get(a) ?? 0) <= (rank.get(b) ?? 0) ? a : b))
    cycles.push(cyclePath(graph, start, members, rank))
  }
  return cycles.sort((x, y) => (rank.get(x[0]!) ?? 0) - (rank.get(y[0]!) ?? 0))
}

/** Breadth-first shortest way back to `start` inside the component, preferring file order. */
function cyclePath(graph: TaskGraph, start: string, members: Set<string>, rank: Map<string, number>): string[] {
  const previous = new Map<string, string>()
  const queue = [start]
  const byRank = (a: string, b: string): number => (rank.get(a) ?? 0) - (rank.get(b) ?? 0)
  for (let i = 0; i < queue.length; i++) {
    const node = queue[i]!
    for (const next of graph.outNeighbors(node).filter((n) => members.has(n)).sort(byRank)) {
      if (next === start) {
        const path = [node]
        while (path[0] !== start) path.unshift(previous.get(path[0]!)!)
        return [...path, start]
      }
      if (!previous.has(next)) {
        previous.set(next, node)
        queue.push(next)
      }
    }
  }
  return [start, start]
}

/**
 * Tarjan's algorithm, iterative so that long chains cannot overflow the stack (graphology-components'
 * stronglyConnectedComponents recurses once per node: a hostile 20,000-task chain overflows it).
 */
function stronglyConnected(graph: TaskGraph): string[][] {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const onStack = new Set<string>()
  const stack: string[] = []
  const components: string[][] = []
  let counter = 0
  for (const root of graph.nodes()) {
    if (index.has(root)) continue
    const work: { node: string; neighbors: string[]; next: number }[] = []
    const enter = (node: string): void => {
      index.set(node, counter)
      low.set(node, counter)
      counter++
      stack.push(node)
      onStack.add(node)
      work.push({ node, neighbors: graph.outNeighbors(node), next: 0 })
    }
    enter(root)
    while (work.length > 0) {
      const frame = work[work.length - 1]!
      if (frame.next < frame.neighbors.length) {
        const next = frame.neighbors[frame.next++]!
        if (!index.has(next)) enter(next)
        else if (onStack.has(next)) low.set(frame.node, Math.min(low.get(frame.node)!, index.get(next)!))
        continue
      }
      work.pop()
      const parent = work[work.length - 1]
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!))
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = []
        let member: string
        do {
          member = stack.pop()!
          onStack.delete(member)
          component.push(member)
        } while (member !== frame.node)
        components.push(component)
      }
    }
  }
  return components
}

/** Every task that must finish before `id` can start (transitively). */
export function ancestorsOf(graph: TaskGraph, id: string): Set<string> {
  return reachable(graph, id, 'in')
}

/** Every task that waits, directly or not, for `id`. */
export function descendantsOf(graph: TaskGraph, id: string): Set<string> {
  return reachable(graph, id, 'out')
}

function reachable(graph: TaskGraph, id: string, direction: 'in' | 'out'): Set<string> {
  if (!graph.hasNode(id)) return new Set()
  return reachableFrom(id, (node) => (direction === 'in' ? graph.inNeighbors(node) : graph.outNeighbors(node)))
}

/** Every node reachable from `id` (not `id` itself unless on a cycle) through `next`. */
function reachableFrom(id: string, next: (node: string) => readonly string[]): Set<string> {
  const seen = new Set<string>()
  const queue = [...next(id)]
  while (queue.length > 0) {
    const node = queue.pop()!
    if (seen.has(node)) continue
    seen.add(node)
    queue.push(...next(node))
  }
  return seen
}

/** The tasks that depend directly on `id`, in file order. */
export function downstreamOf(tasks: readonly TaskNode[], id: string): readonly string[] {
  const graph = taskGraphOf(tasks)
  return graph.hasNode(id) ? graph.outNeighbors(id) : []
}

const orders = new WeakMap<readonly TaskNode[], readonly TaskNode[]>()

/**
 * Tasks with every upstream before them, ties in file order (Kahn's algorithm, breadth first: the
 * order the scheduler queues them in and the page and CLI list them in); cached per task list. Only
 * for loaded DAGs, which are acyclic.
 */
export function dependencyOrder<T extends TaskNode>(tasks: readonly T[]): T[] {
  let order = orders.get(tasks)
  if (!order) {
    const byId = new Map(tasks.map((t) => [t.id, t]))
    orders.set(tasks, (order = graphology().topologicalSort(taskGraphOf(tasks)).map((id) => byId.get(id)!)))
  }
  return order as T[]
}

/**
 * The two questions the validator asks of every DAG file (is it acyclic, and what is downstream of a
 * task), answered from plain Maps: `cairn validate` checks thousands of files, and building a
 * graphology graph for each cost a tenth of the run. Edges are those of buildTaskGraph; findCycles
 * (on a built graph) names the cycles when there are any.
 */
export function lightGraph(tasks: readonly TaskNode[]): { acyclic: boolean; descendants: (id: string) => ReadonlySet<string> } {
  const n = tasks.length
  const index = new Map<string, number>()
  for (let i = 0; i < n; i++) index.set(tasks[i]!.id, i)
  // Downstream edges by task index, each edge once (no Map or Set per task); built when first needed.
  let out: number[][] | undefined
  let inDegree: number[] | undefined
  const edges = (): number[][] => {
    if (out) return out
    out = new Array<number[]>(n)
    for (let i = 0; i < n; i++) out[i] = []
    inDegree = new Array<number>(n).fill(0)
    for (let i = 0; i < n; i++) {
      const deps = tasks[i]!.dependsOn
      // A dependency listed twice is one edge; a long list is deduplicated through a set, a short one in place.
      const unique = deps.length > 8 ? [...new Set(deps)] : deps
      for (let k = 0; k < unique.length; k++) {
        const upstream = index.get(unique[k]!)
        if (upstream === undefined || upstream === i || (unique === deps && deps.indexOf(deps[k]!) !== k)) continue
        out[upstream]!.push(i)
        inDegree[i]!++
      }
    }
    return out
  }
  // Most files declare every task below the tasks it depends on: then file order is a run order and
  // the graph is acyclic without building it. Otherwise Kahn's algorithm decides.
  let ordered = true
  for (let i = 0; i < n && ordered; i++) {
    const deps = tasks[i]!.dependsOn
    for (let k = 0; k < deps.length; k++) {
      const upstream = index.get(deps[k]!)
      if (upstream !== undefined && upstream >= i) {
        ordered = false
        break
      }
    }
  }
  let acyclic = true
  if (!ordered) {
    const next = edges()
    const degree = inDegree!
    const ready: number[] = []
    for (let i = 0; i < n; i++) if (degree[i] === 0) ready.push(i)
    for (let r = 0; r < ready.length; r++) {
      for (const following of next[ready[r]!]!) if (--degree[following]! === 0) ready.push(following)
    }
    acyclic = ready.length === n
  }
  // Remembered per task: asking "is T upstream of me?" once per referenced T keeps a 20,000-task chain
  // linear, where computing every task's ancestors would be quadratic.
  const memo = new Map<string, Set<string>>()
  const descendants = (id: string): ReadonlySet<string> => {
    let seen = memo.get(id)
    if (!seen) {
      seen = new Set<string>()
      const start = index.get(id)
      if (start !== undefined) {
        const next = edges()
        const visited = new Uint8Array(n)
        const queue = [...next[start]!]
        while (queue.length > 0) {
          const node = queue.pop()!
          if (visited[node] === 1) continue
          visited[node] = 1
          seen.add(tasks[node]!.id)
          for (const following of next[node]!) queue.push(following)
        }
      }
      memo.set(id, seen)
    }
    return seen
  }
  return { acyclic, descendants }
}
