import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { ancestorsOf, buildTaskGraph, dependencyOrder, descendantsOf, downstreamOf, findCycles, lightGraph, taskGraphOf } from '../../engine/graph/task-graph.ts'
import type { TaskNode } from '../../engine/graph/task-graph.ts'

/** Kahn's algorithm with a FIFO queue, written out: the order the engine has always used. */
function referenceOrder(tasks: readonly TaskNode[]): string[] {
  const ids = new Set(tasks.map((t) => t.id))
  const remaining = new Map(tasks.map((t) => [t.id, new Set(t.dependsOn.filter((d) => ids.has(d) && d !== t.id)).size]))
  const out: string[] = []
  const queue = tasks.filter((t) => remaining.get(t.id) === 0).map((t) => t.id)
  for (let i = 0; i < queue.length; i++) {
    out.push(queue[i]!)
    for (const t of tasks) {
      if (new Set(t.dependsOn).has(queue[i]!)) {
        remaining.set(t.id, remaining.get(t.id)! - 1)
        if (remaining.get(t.id) === 0) queue.push(t.id)
      }
    }
  }
  return out
}

/** A random DAG: each task depends only on tasks before it in some hidden order, listed shuffled. */
const dagArb = fc.integer({ min: 1, max: 25 }).chain((n) =>
  fc.tuple(
    fc.array(fc.array(fc.nat(), { maxLength: 4 }), { minLength: n, maxLength: n }),
    fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
  ).map(([deps, listing]) => {
    const tasks = deps.map((d, i) => ({ id: `t${i}`, dependsOn: i === 0 ? [] : [...new Set(d.map((x) => `t${x % i}`))] }))
    return listing.map((i) => tasks[i]!)
  }),
)

test('dependencyOrder: upstreams first, ties in file order, as the reference Kahn order', () => {
  fc.assert(
    fc.property(dagArb, (tasks) => {
      const order = dependencyOrder(tasks).map((t) => t.id)
      assert.deepEqual(order, referenceOrder(tasks))
      const at = new Map(order.map((id, i) => [id, i]))
      for (const t of tasks) for (const d of t.dependsOn) assert.ok(at.get(d)! < at.get(t.id)!)
    }),
  )
})

test('ancestors and descendants are each other mirror, and match a closure computed by hand', () => {
  fc.assert(
    fc.property(dagArb, (tasks) => {
      const graph = taskGraphOf(tasks)
      const down = lightGraph(tasks).descendants
      const byId = new Map(tasks.map((t) => [t.id, t]))
      for (const t of tasks) {
        const closure = new Set<string>()
        const stack = [...t.dependsOn]
        while (stack.length) {
          const id = stack.pop()!
          if (!closure.has(id)) closure.add(id), stack.push(...byId.get(id)!.dependsOn)
        }
        assert.deepEqual([...ancestorsOf(graph, t.id)].sort(), [...closure].sort())
        for (const a of closure) assert.ok(descendantsOf(graph, a).has(t.id) && down(a).has(t.id))
      }
    }),
  )
})

test('downstreamOf lists direct dependants in file order; unknown tasks have none', () => {
  const tasks = [{ id: 'a', dependsOn: [] }, { id: 'c', dependsOn: ['a'] }, { id: 'b', dependsOn: ['a'] }]
  assert.deepEqual(downstreamOf(tasks, 'a'), ['c', 'b'])
  assert.deepEqual(downstreamOf(tasks, 'zz'), [])
})

test('cycles are found as paths on long chains without overflowing the stack', () => {
  const n = 20_000
  const tasks = Array.from({ length: n }, (_, i) => ({ id: `t${i}`, dependsOn: [`t${(i + n - 1) % n}`] }))
  const cycles = findCycles(buildTaskGraph(tasks), tasks.map((t) => t.id))
  assert.equal(cycles.length, 1)
  assert.equal(cycles[0]!.length, n + 1)
  assert.equal(cycles[0]![0], cycles[0]![n])
  const chain = tasks.map((t, i) => ({ id: t.id, dependsOn: i === 0 ? [] : [`t${i - 1}`] }))
  assert.equal(descendantsOf(taskGraphOf(chain), 't0').size, n - 1)
  assert.equal(dependencyOrder(chain).length, n)
})
