/**
 * The executors `train` can run its ranks on, by `executor:` kind. The operator looks the kind up
 * here and never branches on it elsewhere. ssh and slurm register here when they are built in.
 */
import type { TaskUser } from '../process/task-user.ts'
import type { Executor } from './executor.ts'
import { createLocalExecutor } from './local.ts'
import { createSshExecutor } from './ssh.ts'
import { createSlurmExecutor } from './slurm.ts'
import type { SlurmCluster } from '../config/config-types.ts'
import type { SshHostSetting } from './ssh-connection.ts'
import type { ClusterSetting, SshHostsEntry } from '../config/data-settings.ts'

export interface ExecutorContext {
  /** The OS user local ranks run as. */
  user?: TaskUser
  killGraceMs?: number
  /** Name of the cluster in cairn.yaml (ssh, slurm). */
  cluster?: string
  /** `clusters` of cairn.yaml. */
  clusters?: Readonly<Record<string, ClusterSetting>>
  /** `ssh_hosts` of cairn.yaml (the login node of a Slurm cluster that submits over SSH). */
  sshHosts?: Readonly<Record<string, SshHostsEntry>>
  /**
   * A worker that stops (drain) leaves the job running for the worker that takes the attempt over
   * (set when the handle is stored with the attempt); cancel and timeout still stop it.
   */
  keepJobsOnShutdown?: boolean
}

export type ExecutorFactory = (context: ExecutorContext) => Executor | { error: string }

export const EXECUTORS: Record<string, ExecutorFactory> = {
  local: (context) => createLocalExecutor({ ...(context.user ? { user: context.user } : {}), ...(context.killGraceMs === undefined ? {} : { killGraceMs: context.killGraceMs }) }),
  ssh: (context) => {
    const found = clusterOf(context, 'ssh')
    if ('error' in found) return found
    const cluster = found.cluster as { hosts: SshHostSetting[]; known_hosts_file?: string; workdir?: string }
    return createSshExecutor({ name: found.name, hosts: cluster.hosts, ...(cluster.known_hosts_file ? { known_hosts_file: cluster.known_hosts_file } : {}), ...(cluster.workdir ? { workdir: cluster.workdir } : {}) }, { ...(context.killGraceMs === undefined ? {} : { killGraceMs: context.killGraceMs }), ...keep(context) })
  },
  slurm: (context) => {
    // SPEC section 4: without `cluster`, the one slurm cluster of cairn.yaml, else the Slurm commands on the worker's PATH.
    const clusters = context.clusters ?? {}
    if (context.cluster === undefined) {
      const slurmClusters = Object.entries(clusters).filter(([, cluster]) => cluster?.kind === 'slurm')
      if (slurmClusters.length > 1) return { error: `executor slurm needs a cluster: cairn.yaml defines several Slurm clusters (${slurmClusters.map(([name]) => name).join(', ')})` }
      const only = slurmClusters[0]
      if (only === undefined) return createSlurmExecutor(undefined, { name: null, ...keep(context) })
      return createSlurmExecutor(only[1] as SlurmCluster, { name: only[0], ...keep(context), ...hosts(context) })
    }
    const found = clusterOf(context, 'slurm')
    if ('error' in found) return found
    return createSlurmExecutor(found.cluster as SlurmCluster, { name: found.name, ...keep(context), ...hosts(context) })
  },
}

export function executorFor(kind: string, context: ExecutorContext): Executor | { error: string } {
  const factory = Object.hasOwn(EXECUTORS, kind) ? EXECUTORS[kind] : undefined
  if (!factory) return { error: `executor ${kind} is not available in this version` }
  return factory(context)
}

function hosts(context: ExecutorContext): { sshHosts?: Readonly<Record<string, SshHostsEntry>> } {
  return context.sshHosts !== undefined ? { sshHosts: context.sshHosts } : {}
}

function keep(context: ExecutorContext): { keepJobsOnShutdown?: boolean } {
  return context.keepJobsOnShutdown === true ? { keepJobsOnShutdown: true } : {}
}

/** The cluster a task names, checked to be of the executor's kind. */
function clusterOf(context: ExecutorContext, kind: 'ssh' | 'slurm'): { name: string; cluster: ClusterSetting } | { error: string } {
  const clusters = context.clusters ?? {}
  const name = context.cluster
  if (name === undefined) return { error: `executor ${kind} needs a cluster (cluster: NAME of cairn.yaml)` }
  const cluster = Object.hasOwn(clusters, name) ? clusters[name] : undefined
  if (!cluster) return { error: `cluster ${JSON.stringify(name)} is not defined in cairn.yaml (clusters: ${Object.keys(clusters).join(', ') || 'none'})` }
  if (cluster.kind !== kind) return { error: `cluster ${name} is a ${String(cluster.kind)} cluster, not ${kind}` }
  return { name, cluster }
}
