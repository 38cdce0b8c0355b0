/**
 * The scheduler's decision for one running run, as a pure function of the DAG version, the run's
 * task instance states, free capacity and the clock. The store applies the decisions in one
 * transaction (engine/store/advance.ts); workers only report attempt results.
 */
import type { DagSpec, TaskSpec } from '../dag/dag-model.ts'
import { dependencyOrder } from '../graph/task-graph.ts'
import type { TaskState } from './states.ts'
import { evaluateTriggerRule, runStateFromTasks } from './trigger-rules.ts'

export interface TaskInstanceSnapshot {
  state: TaskState
  attempt: number
  nextRetryAt: Date | null
}

export interface RunSnapshot {
  runId: string
  /** Task instances by task id; a task of the DAG version missing here is treated as pending. */
  tasks: ReadonlyMap<string, TaskInstanceSnapshot>
}

/** Free slots per pool right now; a pool that is not listed is unlimited. */
export type PoolCapacity = ReadonlyMap<string, number>

export type Decision =
  | { kind: 'queue_task'; taskId: string; priority: number; pool: string; retry: boolean }
  | { kind: 'settle_task'; taskId: string; to: 'skipped' | 'upstream_failed'; reason: string }
  | { kind: 'finish_run'; to: 'success' | 'failed'; reason: string }

export interface DecideOptions {
  /**
   * Decide for these tasks only (the downstream of a task that just finished); their upstreams'
   * states must be in the snapshot. Whether the run is finished is then not decided.
   */
  only?: ReadonlySet<string>
  /** Task instances of the run queued or running, when the snapshot does not hold them all. */
  active?: number
}

export interface RunDecision {
  decisions: Decision[]
  /** Ready tasks were left waiting for max_active_tasks or a pool: the next finish must look at the whole run. */
  heldBack: boolean
}

export function decideRun(dag: DagSpec, run: RunSnapshot, now: Date, pools: PoolCapacity, options: DecideOptions = {}): RunDecision {
  const decisions: Decision[] = []
  const states = new Map<string, TaskState>()
  for (const task of dag.tasks) {
    const known = run.tasks.get(task.id)?.state
    if (known !== undefined) states.set(task.id, known)
    else if (!options.only) states.set(task.id, 'pending')
  }

  // Settle what can be settled, in dependency order, so a cascade (a skip making its downstream
  // skip too) resolves in one pass rather than one scheduler loop per level.
  const order = dependencyOrder(dag.tasks)
  const ready: { task: TaskSpec; rank: number; retry: boolean }[] = []
  for (const [rank, task] of order.entries()) {
    if (options.only && !options.only.has(task.id)) continue
    const state = states.get(task.id)
    if (state === undefined) continue
    if (state === 'up_for_retry') {
      const due = run.tasks.get(task.id)?.nextRetryAt
      if (!due || due.getTime() <= now.getTime()) ready.push({ task, rank, retry: true })
      continue
    }
    if (state !== 'pending') continue
    const upstream = task.dependsOn.map((id) => states.get(id) ?? 'pending')
    const verdict = evaluateTriggerRule(task.triggerRule, upstream)
    if (verdict.kind === 'run') ready.push({ task, rank, retry: false })
    else if (verdict.kind === 'skip' || verdict.kind === 'upstream_failed') {
      const to = verdict.kind === 'skip' ? 'skipped' : 'upstream_failed'
      states.set(task.id, to)
      decisions.push({ kind: 'settle_task', taskId: task.id, to, reason: `trigger rule ${task.triggerRule}: upstream ${describe(task.dependsOn, states)}` })
    }
  }

  // Start what is ready: highest priority first, then DAG order, within max_active_tasks and pools.
  let active = options.active ?? [...states.values()].filter((s) => s === 'queued' || s === 'running').length
  const free = new Map(pools)
  let heldBack = false
  ready.sort((a, b) => b.task.priority - a.task.priority || a.rank - b.rank)
  for (const { task, retry } of ready) {
    if (active >= dag.maxActiveTasks) {
      heldBack = true
      break
    }
    const slots = free.get(task.pool)
    if (slots !== undefined) {
      if (slots <= 0) {
        heldBack = true
        continue
      }
      free.set(task.pool, slots - 1)
    }
    active++
    states.set(task.id, 'queued')
    decisions.push({ kind: 'queue_task', taskId: task.id, priority: task.priority, pool: task.pool, retry })
  }

  if (options.only) return { decisions, heldBack }
  const outcome = runStateFromTasks([...states.values()])
  if (outcome !== null) {
    const failed = [...states.entries()].filter(([, s]) => s !== 'success' && s !== 'skipped').map(([id]) => id)
    decisions.push({ kind: 'finish_run', to: outcome, reason: outcome === 'success' ? 'every task succeeded or was skipped' : `not successful: ${failed.join(', ')}` })
  }
  return { decisions, heldBack }
}

function describe(ids: readonly string[], states: ReadonlyMap<string, TaskState>): string {
  return ids.map((id) => `${id}=${states.get(id) ?? 'pending'}`).join(', ')
}
