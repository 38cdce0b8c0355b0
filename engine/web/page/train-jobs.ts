/**
 * What a run's DAG version declares for each of its `train` tasks: the executor, the cluster and
 * the ranks (nodes x tasks_per_node). The run page shows them before (and besides) what the running
 * job reports, so a train task's panel lists its executor and ranks from the first moment. Only
 * values the params schema fixes (an enum, a cluster name, integers) are passed on.
 */
import type { DagSpec } from '../../dag/dag-model.ts'

export interface DeclaredTrainJob {
  executor: string | null
  cluster: string | null
  nodes: number | null
  tasks_per_node: number
}

export const declaredTrainJobSchema = {
  type: 'object',
  required: ['executor', 'cluster', 'nodes', 'tasks_per_node'],
  properties: {
    executor: { type: ['string', 'null'], enum: ['local', 'ssh', 'slurm', null] },
    cluster: { type: ['string', 'null'] },
    nodes: { type: ['integer', 'null'] },
    tasks_per_node: { type: 'integer' },
  },
} as const

export function declaredTrainJobs(spec: Pick<DagSpec, 'tasks'>): Record<string, DeclaredTrainJob> {
  const jobs: Record<string, DeclaredTrainJob> = {}
  for (const task of spec.tasks) {
    if (task.operator !== 'train') continue
    const p = (task.params ?? {}) as Record<string, unknown>
    const count = (v: unknown): number | null => (Number.isInteger(v) && (v as number) >= 1 ? (v as number) : null)
    jobs[task.id] = {
      executor: p.executor === 'local' || p.executor === 'ssh' || p.executor === 'slurm' ? p.executor : null,
      cluster: typeof p.cluster === 'string' && /^[a-z][a-z0-9_-]{0,63}$/.test(p.cluster) ? p.cluster : null,
      nodes: count(p.nodes),
      tasks_per_node: count(p.tasks_per_node) ?? 1,
    }
  }
  return jobs
}
