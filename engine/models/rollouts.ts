/**
 * The recorded side of canary rollouts: reading the state rollout-plan.ts decides on, and applying
 * its actions, each in one transaction under the model's row lock (stage, shares, audit and the
 * rollout row change together, so a crash leaves either the old or the new state). Writes made for
 * a task attempt are fenced by the attempt's claim, as registering a version is: an attempt that
 * was cancelled, timed out or declared lost changes nothing.
 */
import type { Db } from '../store/db.ts'
import type { Queryable } from '../store/queryable.ts'
import { attemptHoldsClaim } from '../store/datasets.ts'
import { readModelVersion, readModelVersionInStage } from '../store/models.ts'
import type { ModelActor, ModelStage } from '../store/models.ts'
import { insertRollout, listRollouts, readActiveRollout, updateRollout } from '../store/rollouts.ts'
import type { RolloutOwner, RolloutPlanJson, RolloutRow, RolloutStepJson } from '../store/rollouts.ts'
import type { Producer } from '../data/datasets.ts'
import { lockModel, moveStage, setCanaryShare } from './stages.ts'
import type { RecordedState, RolloutPlan, ServingFigures } from './rollout-plan.ts'

/** Reads a version's serving figures summed over every model server process, in [since, until or now). */
export type ServingWindowReader = (db: Db, model: string, version: number, since: Date, until?: Date) => Promise<ServingFigures>

export class RolloutFencedError extends Error {
  override name = 'RolloutFencedError'
}

export interface Rollouts {
  /** The model's recorded state for rolling out `version`, and the unfinished rollout's id. */
  read(model: string, version: number): Promise<{ state: RecordedState; rollout: RolloutRow | undefined }>
  /** A new rollout; the version goes to canary at share 0 (unless a person already made it the canary). */
  begin(model: string, version: number, plan: RolloutPlan, now: Date): Promise<RolloutRow>
  /**
   * This attempt takes over an unfinished rollout (a retry or a re-run); refused while the attempt
   * that runs it is still running (two tasks never drive one rollout).
   */
  adopt(rolloutId: number, plan: RolloutPlan): Promise<{ ok: true } | { ok: false; message: string }>
  /** Sets the canary's share to the step's percent and opens the step's window (a held rollout runs again). */
  startStep(rollout: RolloutRow, index: number, percent: number, now: Date): Promise<void>
  passStep(rollout: RolloutRow, index: number, figures: ServingFigures, now: Date, waitedForRequests?: boolean): Promise<void>
  /** rollback: all traffic to production and the version back to candidate; hold: the split stays and the rollout is held. */
  failStep(rollout: RolloutRow, index: number, figures: ServingFigures, reason: string, onFailure: 'rollback' | 'hold', now: Date, waitedForRequests?: boolean): Promise<ModelStage>
  /** The version becomes production (the previous one archived), the rollout promoted. */
  promote(rollout: RolloutRow, now: Date): Promise<void>
  /** Ends the rollout as rolled back (cancelled or timed out): traffic to production, the version to candidate. */
  abandon(rollout: RolloutRow, reason: string, now: Date): Promise<void>
  /** The canary's figures since a step started. */
  figures(model: string, version: number, since: Date): Promise<ServingFigures>
  history(model: string): Promise<RolloutRow[]>
}

export interface RolloutsOptions {
  db: Db
  producer: Producer
  servingWindow?: ServingWindowReader
}

export function planJson(plan: RolloutPlan): RolloutPlanJson {
  return {
    steps: [...plan.steps],
    step_duration_ms: plan.stepDurationMs,
    analysis: { min_requests: plan.analysis.minRequests, max_error_rate: plan.analysis.maxErrorRate, max_p99_latency_ms: plan.analysis.maxP99LatencyMs },
    on_failure: plan.onFailure,
  }
}

export function createRollouts(options: RolloutsOptions): Rollouts {
  const { db, producer } = options
  const actor: ModelActor = producer.kind === 'attempt' ? { run: producer.runId, task: producer.taskId } : { user: producer.actor }
  const owner: RolloutOwner = producer.kind === 'attempt' ? { runId: producer.runId, taskId: producer.taskId, attempt: producer.attempt } : { runId: null, taskId: null, attempt: null }

  /** One transaction, fenced by the attempt's claim, under the model's row lock. */
  const change = <T>(model: string, fn: (q: Queryable) => Promise<T>): Promise<T> =>
    db.tx(async (q) => {
      if (producer.kind === 'attempt' && !(await attemptHoldsClaim(q, producer.claimId))) {
        throw new RolloutFencedError('this attempt no longer holds its task instance (it was cancelled, timed out or declared lost); the rollout was not changed')
      }
      await lockModel(q, model)
      return fn(q)
    })

  /** The rollout row as it is now, locked; it must still be the model's unfinished rollout. */
  const current = async (q: Queryable, rollout: RolloutRow): Promise<RolloutRow> => {
    const active = await readActiveRollout(q, rollout.model, true)
    if (!active || active.id !== rollout.id) throw new RolloutFencedError(`the rollout of ${rollout.model} version ${rollout.version} was ended by someone else`)
    if (producer.kind === 'attempt' && (active.runId !== owner.runId || active.taskId !== owner.taskId || active.attempt !== owner.attempt)) {
      throw new RolloutFencedError(`the rollout of ${rollout.model} version ${rollout.version} was taken over by run ${active.runId} task ${active.taskId} (attempt ${active.attempt})`)
    }
    return active
  }

  const withStep = (steps: readonly RolloutStepJson[], index: number, step: RolloutStepJson): RolloutStepJson[] => [...steps.slice(0, index), step]

  return {
    async read(model, version) {
      const [row, canary, rollout] = await Promise.all([readModelVersion(db, model, version), readModelVersionInStage(db, model, 'canary'), readActiveRollout(db, model)])
      return {
        state: {
          version: row && { stage: row.stage, trafficShare: row.trafficShare },
          otherCanary: canary && canary.version !== version ? canary.version : null,
          rollout: rollout && { version: rollout.version, status: rollout.status, steps: rollout.steps },
        },
        rollout,
      }
    },
    begin: (model, version, plan, now) =>
      change(model, async (q) => {
        const row = await readModelVersion(q, model, version)
        if (row?.stage !== 'canary') await moveStage(q, model, version, 'canary', actor, now)
        return insertRollout(q, model, version, planJson(plan), owner, now)
      }),
    adopt: (rolloutId, plan) =>
      db.tx(async (q) => {
        if (producer.kind === 'attempt' && !(await attemptHoldsClaim(q, producer.claimId))) throw new RolloutFencedError('this attempt no longer holds its task instance')
        const { rows } = await q.query<{ run_id: string | null; task_id: string | null; attempt: number | null; state: string | null }>(
          `SELECT r.run_id, r.task_id, r.attempt, a.state FROM cairn.model_rollout r
             LEFT JOIN cairn.attempt a ON a.run_id = r.run_id AND a.task_id = r.task_id AND a.attempt = r.attempt
            WHERE r.id = $1 FOR UPDATE OF r`,
          [rolloutId],
        )
        const row = rows[0]
        if (!row) throw new RolloutFencedError('the rollout is gone')
        const mine = row.run_id === owner.runId && row.task_id === owner.taskId && row.attempt === owner.attempt
        if (!mine && row.state === 'running') {
          return { ok: false, message: `it is being rolled out by run ${row.run_id} task ${row.task_id} (attempt ${row.attempt}), which is still running` }
        }
        await updateRollout(q, rolloutId, { owner, plan: planJson(plan) })
        return { ok: true }
      }),
    startStep: (rollout, index, percent, now) =>
      change(rollout.model, async (q) => {
        const row = await current(q, rollout)
        await setCanaryShare(q, row.model, row.version, percent / 100, actor)
        const step: RolloutStepJson = { percent, started_at: now.toISOString(), ended_at: null, requests: 0, errors: 0, error_rate: null, p99_ms: null, passed: null, reason: null }
        await updateRollout(q, row.id, { status: 'running', reason: null, steps: withStep(row.steps, index, step) })
      }),
    passStep: (rollout, index, figures, now, waited = false) =>
      change(rollout.model, async (q) => {
        const row = await current(q, rollout)
        await updateRollout(q, row.id, { steps: withStep(row.steps, index, closed(row.steps[index]!, figures, now, true, null, waited)) })
      }),
    failStep: (rollout, index, figures, reason, onFailure, now, waited = false) =>
      change(rollout.model, async (q) => {
        const row = await current(q, rollout)
        const steps = withStep(row.steps, index, closed(row.steps[index]!, figures, now, false, reason, waited))
        if (onFailure === 'hold') {
          await updateRollout(q, row.id, { status: 'held', steps, reason })
          return 'canary'
        }
        await updateRollout(q, row.id, { status: 'rolled_back', steps, reason, endedAt: now })
        await moveStage(q, row.model, row.version, 'candidate', actor, now)
        return 'candidate'
      }),
    promote: (rollout, now) =>
      change(rollout.model, async (q) => {
        const row = await current(q, rollout)
        await updateRollout(q, row.id, { status: 'promoted', endedAt: now })
        await moveStage(q, row.model, row.version, 'production', actor, now)
      }),
    // Not fenced by the claim (a cancelled attempt has lost it by now) but by the rollout's owner:
    // only the attempt that runs the rollout takes its traffic back.
    abandon: (rollout, reason, now) =>
      db.tx(async (q) => {
        await lockModel(q, rollout.model)
        const row = await readActiveRollout(q, rollout.model, true)
        if (!row || row.id !== rollout.id || row.status !== 'running' || row.runId !== owner.runId || row.taskId !== owner.taskId || row.attempt !== owner.attempt) return
        const steps = row.steps.map((s) => (s.ended_at === null ? { ...s, ended_at: now.toISOString(), passed: false, reason } : s))
        await updateRollout(q, row.id, { status: 'rolled_back', steps, reason, endedAt: now })
        await moveStage(q, row.model, row.version, 'candidate', actor, now)
      }),
    async figures(model, version, since) {
      if (!options.servingWindow) throw new Error('this process cannot read the model servers\' figures')
      return options.servingWindow(db, model, version, since)
    },
    history: (model) => listRollouts(db, model),
  }
}

function closed(step: RolloutStepJson, f: ServingFigures, now: Date, passed: boolean, reason: string | null, waited: boolean): RolloutStepJson {
  const errorRate = f.errorRate ?? (f.requests > 0 ? f.errors / f.requests : null)
  return { ...step, ended_at: now.toISOString(), requests: f.requests, errors: f.errors, error_rate: errorRate, p99_ms: f.p99Ms, passed, reason, waited_for_requests: waited }
}
