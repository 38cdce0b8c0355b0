/**
 * The dependency graph of one DAG's tasks (graphology), edges pointing downstream:
 * `a -> b` means b depends on a, so a runs first.
 */
import graphology from 'graphology'
import type { DirectedGraph as DirectedGraphType } from 'graphology'
import { hasCycle, topologicalSort } from 'graphology-dag'

const { DirectedGraph } = graphology as unknown as { DirectedGraph: typeof DirectedGraphType }

export interface TaskNode {
  id: string
  dependsOn: readonly string[]
}

export type TaskGraph = DirectedGraphType

/** Builds the graph; dependencies naming unknown tasks or the task itself are left out (the validator reports them). */
export function buildTaskGraph(tasks: readonly TaskNode[]): TaskGraph {
  const graph = new DirectedGraph()
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
  if (!hasCycle(graph)) return []
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

/** Tarjan's algorithm, iterative so that long chains cannot overflow the stack. */
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
  const seen = new Set<string>()
  if (!graph.hasNode(id)) return seen
  const queue = [...graph.inNeighbors(id)]
  while (queue.length > 0) {
    const node = queue.pop()!
    if (seen.has(node)) continue
    seen.add(node)
    queue.push(...graph.inNeighbors(node))
  }
  return seen
}

/** Task ids in an order where every task comes after its upstreams. Only call on an acyclic graph. */
export function runOrder(graph: TaskGraph): string[] {
  return topologicalSort(graph)
}
