/**
 * The registry's lifecycle (SPEC section 7): moving a version between stages and changing the
 * canary's traffic share, each in the caller's transaction under the model's row lock, with an audit
 * row per change. The partial unique indexes of migration 0014 stay the last word on "one
 * production, one canary": a second canary is refused by the database and reported as a
 * StageConflictError with a message a person can act on.
 *
 * Shares: the canary's traffic_share is the fraction of requests it gets; production's is the rest
 * (1 - canary share), kept in step so that every reader sees the same split; other stages have 0.
 */
import type { Queryable } from '../store/queryable.ts'
import { readModelVersion, readModelVersionInStage, updateModelStage } from '../store/models.ts'
import type { ModelActor, ModelStage, ModelVersionRow } from '../store/models.ts'
import { readActiveRollout, updateRollout } from '../store/rollouts.ts'

export class StageConflictError extends Error {
  override name = 'StageConflictError'
}

/** Serializes stage changes of one model (registering takes the same lock). */
export async function lockModel(q: Queryable, model: string): Promise<boolean> {
  const { rows } = await q.query(`SELECT name FROM cairn.model WHERE name = $1 FOR UPDATE`, [model])
  return rows.length > 0
}

function isUniqueViolation(error: unknown, index: string): boolean {
  const e = error as { code?: unknown; constraint?: unknown }
  return e.code === '23505' && e.constraint === index
}

async function setShare(q: Queryable, model: string, version: number, share: number): Promise<void> {
  await q.query(`UPDATE cairn.model_version SET traffic_share = $3 WHERE model = $1 AND version = $2`, [model, version, share])
}

/** Production gets whatever the canary does not. */
async function balanceProduction(q: Queryable, model: string): Promise<void> {
  await q.query(
    `UPDATE cairn.model_version SET traffic_share = 1 - COALESCE((SELECT traffic_share FROM cairn.model_version WHERE model = $1 AND stage = 'canary'), 0)
      WHERE model = $1 AND stage = 'production'`,
    [model],
  )
}

export interface StageChange {
  from: ModelStage
  row: ModelVersionRow
  /** The production version this change archived, if any. */
  archived: number | null
}

/**
 * Moves a version to a stage: to production archives the previous production version (and ends the
 * canary's share if it was the canary); to canary starts at share 0 (a rollout sets the steps);
 * to candidate or archived takes its traffic away. An unfinished rollout of the version that a
 * person moves out of canary is closed with the reason. Undefined when there is no such version.
 */
export async function moveStage(q: Queryable, model: string, version: number, to: ModelStage, actor: ModelActor, now: Date): Promise<StageChange | undefined> {
  if (!(await lockModel(q, model))) return undefined
  const current = await readModelVersion(q, model, version)
  if (!current) return undefined
  if (current.stage === to) return { from: to, row: current, archived: null }
  let archived: number | null = null
  if (to === 'production') {
    const previous = await readModelVersionInStage(q, model, 'production')
    if (previous && previous.version !== version) {
      await updateModelStage(q, model, previous.version, 'archived', actor, 0)
      archived = previous.version
    }
  }
  if (to === 'canary') {
    const canary = await readModelVersionInStage(q, model, 'canary')
    if (canary) throw new StageConflictError(canaryTaken(model, canary.version))
  }
  let changed
  try {
    changed = await updateModelStage(q, model, version, to, actor, to === 'production' ? 1 : 0)
  } catch (error) {
    if (isUniqueViolation(error, 'model_version_one_canary')) {
      throw new StageConflictError(canaryTaken(model, null))
    }
    if (isUniqueViolation(error, 'model_version_one_production')) throw new StageConflictError(`model ${model} already has a production version`)
    throw error
  }
  await balanceProduction(q, model)
  const rollout = await readActiveRollout(q, model, true)
  if (rollout && rollout.version === version && to !== 'canary') {
    const who = 'user' in actor ? `user ${actor.user}` : 'token' in actor ? `token ${actor.token}` : `run ${actor.run} task ${actor.task}`
    await updateRollout(q, rollout.id, { status: to === 'production' ? 'promoted' : 'rolled_back', reason: `version moved to ${to} by ${who}`, endedAt: now })
  }
  return { from: changed!.from, row: changed!.row, archived }
}

function canaryTaken(model: string, other: number | null): string {
  return `model ${model} already has a canary (${other === null ? 'another version' : `version ${other}`}); a model has one canary at a time: ` +
    'promote it, or move it to candidate or archived, first'
}

/** Sets the canary's share (0..1) and production's to the rest, with an audit row (canary -> canary at that share). */
export async function setCanaryShare(q: Queryable, model: string, version: number, share: number, actor: ModelActor): Promise<void> {
  await setShare(q, model, version, share)
  await balanceProduction(q, model)
  await q.query(
    `INSERT INTO cairn.model_audit (model, version, from_stage, to_stage, actor, traffic_share) VALUES ($1, $2, 'canary', 'canary', $3::jsonb, $4)`,
    [model, version, JSON.stringify(actor), share],
  )
}
