/**
 * The executors `train` can run its ranks on, by `executor:` kind. The operator looks the kind up
 * here and never branches on it elsewhere. ssh and slurm register here when they are built in.
 */
import type { TaskUser } from '../process/task-user.ts'
import type { Executor } from './executor.ts'
import { createLocalExecutor } from './local.ts'

export interface ExecutorContext {
  /** The OS user local ranks run as. */
  user?: TaskUser
  killGraceMs?: number
  /** Name of the cluster in cairn.yaml (ssh, slurm). */
  cluster?: string
}

export type ExecutorFactory = (context: ExecutorContext) => Executor | { error: string }

export const EXECUTORS: Record<string, ExecutorFactory> = {
  local: (context) => createLocalExecutor({ ...(context.user ? { user: context.user } : {}), ...(context.killGraceMs === undefined ? {} : { killGraceMs: context.killGraceMs }) }),
  // ssh: added with the SSH executor
  // slurm: added with the Slurm executor
}

export function executorFor(kind: string, context: ExecutorContext): Executor | { error: string } {
  const factory = Object.hasOwn(EXECUTORS, kind) ? EXECUTORS[kind] : undefined
  if (!factory) return { error: `executor ${kind} is not available in this version` }
  return factory(context)
}
