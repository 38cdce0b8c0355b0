/**
 * Canary rollouts (migration 0017): one row per rollout of a model version with its plan and its
 * steps. The unique index on unfinished rollouts (running or held) keeps one per model, as the
 * registry keeps one canary.
 */
import type { Queryable } from './queryable.ts'

export const ROLLOUT_STATUSES = ['running', 'promoted', 'rolled_back', 'held'] as const
export type RolloutStatus = (typeof ROLLOUT_STATUSES)[number]

export interface RolloutPlanJson {
  steps: number[]
  step_duration_ms: number
  analysis: { min_requests: number; max_error_rate: number; max_p99_latency_ms: number }
  on_failure: 'rollback' | 'hold'
}

/** One step as stored (and as the API shows it). */
export interface RolloutStepJson {
  percent: number
  started_at: string
  ended_at: string | null
  requests: number
  errors: number
  error_rate: number | null
  p99_ms: number | null
  passed: boolean | null
  reason: string | null
  /** True when min_requests had not come by the window's end and the step waited for them (set when decided). */
  waited_for_requests?: boolean
}

export interface RolloutRow {
  id: number
  model: string
  version: number
  runId: string | null
  taskId: string | null
  attempt: number | null
  status: RolloutStatus
  plan: RolloutPlanJson
  steps: RolloutStepJson[]
  reason: string | null
  startedAt: Date
  endedAt: Date | null
}

const COLUMNS = 'id, model, version, run_id, task_id, attempt, status, plan, steps, reason, started_at, ended_at'

interface RawRollout {
  id: string
  model: string
  version: number
  run_id: string | null
  task_id: string | null
  attempt: number | null
  status: RolloutStatus
  plan: RolloutPlanJson
  steps: RolloutStepJson[]
  reason: string | null
  started_at: Date
  ended_at: Date | null
}

function rowOf(r: RawRollout): RolloutRow {
  return {
    id: Number(r.id),
    model: r.model,
    version: r.version,
    runId: r.run_id,
    taskId: r.task_id,
    attempt: r.attempt,
    status: r.status,
    plan: r.plan,
    steps: r.steps,
    reason: r.reason,
    startedAt: r.started_at,
    endedAt: r.ended_at,
  }
}

/** The model's unfinished (running or held) rollout; `lock` takes its row lock. */
export async function readActiveRollout(q: Queryable, model: string, lock = false): Promise<RolloutRow | undefined> {
  const { rows } = await q.query<RawRollout>(`SELECT ${COLUMNS} FROM cairn.model_rollout WHERE model = $1 AND status IN ('running', 'held')${lock ? ' FOR UPDATE' : ''}`, [model])
  return rows[0] && rowOf(rows[0])
}

export interface RolloutOwner {
  runId: string | null
  taskId: string | null
  attempt: number | null
}

export async function insertRollout(q: Queryable, model: string, version: number, plan: RolloutPlanJson, owner: RolloutOwner, now: Date): Promise<RolloutRow> {
  const { rows } = await q.query<RawRollout>(
    `INSERT INTO cairn.model_rollout (model, version, run_id, task_id, attempt, plan, started_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) RETURNING ${COLUMNS}`,
    [model, version, owner.runId, owner.taskId, owner.attempt, JSON.stringify(plan), now],
  )
  return rowOf(rows[0]!)
}

export interface RolloutUpdate {
  status?: RolloutStatus
  steps?: RolloutStepJson[]
  reason?: string | null
  endedAt?: Date | null
  owner?: RolloutOwner
  plan?: RolloutPlanJson
}

export async function updateRollout(q: Queryable, id: number, u: RolloutUpdate): Promise<RolloutRow> {
  const { rows } = await q.query<RawRollout>(
    `UPDATE cairn.model_rollout SET
       status = COALESCE($2, status),
       steps = COALESCE($3::jsonb, steps),
       reason = CASE WHEN $4::boolean THEN $5 ELSE reason END,
       ended_at = CASE WHEN $6::boolean THEN $7::timestamptz ELSE ended_at END,
       run_id = CASE WHEN $8::boolean THEN $9 ELSE run_id END,
       task_id = CASE WHEN $8::boolean THEN $10 ELSE task_id END,
       attempt = CASE WHEN $8::boolean THEN $11::integer ELSE attempt END,
       plan = COALESCE($12::jsonb, plan)
     WHERE id = $1 RETURNING ${COLUMNS}`,
    [
      id,
      u.status ?? null,
      u.steps === undefined ? null : JSON.stringify(u.steps),
      u.reason !== undefined,
      u.reason ?? null,
      u.endedAt !== undefined,
      u.endedAt ?? null,
      u.owner !== undefined,
      u.owner?.runId ?? null,
      u.owner?.taskId ?? null,
      u.owner?.attempt ?? null,
      u.plan === undefined ? null : JSON.stringify(u.plan),
    ],
  )
  return rowOf(rows[0]!)
}

/** Rollouts of a model, newest first. */
export async function listRollouts(q: Queryable, model: string, limit = 50): Promise<RolloutRow[]> {
  const { rows } = await q.query<RawRollout>(`SELECT ${COLUMNS} FROM cairn.model_rollout WHERE model = $1 ORDER BY id DESC LIMIT $2`, [model, limit])
  return rows.map(rowOf)
}
