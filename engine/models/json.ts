/** The JSON shapes of models, shared by `cairn models ... --format json` and the HTTP API. */
import type { ModelSummary, ModelVersion } from './registry.ts'
import type { RolloutPlanJson, RolloutRow, RolloutStatus, RolloutStepJson } from '../store/rollouts.ts'

export interface ModelSummaryJson {
  name: string
  latest_version: number
  production: number | null
  canary: number | null
  created_at: string
  /** Every version, newest first. */
  versions: ModelVersionJson[]
}

export interface ModelVersionJson {
  name: string
  version: number
  uri: string
  stage: string
  traffic_share: number
  artifact: string
  sha256: string
  metrics: Record<string, unknown>
  features: string[]
  task_kind: string | null
  lineage: Record<string, unknown>
  created_at: string
}

export function modelSummaryJson(m: ModelSummary): ModelSummaryJson {
  return { name: m.name, latest_version: m.latestVersion, production: m.production, canary: m.canary, created_at: m.createdAt.toISOString(), versions: m.versions.map(modelVersionJson) }
}

export function modelVersionJson(v: ModelVersion): ModelVersionJson {
  return {
    name: v.model,
    version: v.version,
    uri: v.uri,
    stage: v.stage,
    traffic_share: v.trafficShare,
    artifact: v.artifact,
    sha256: v.sha256,
    metrics: v.metrics,
    features: v.features,
    task_kind: v.taskKind,
    // A version trained by a run says whether that run is still there (run_pruned: deleted by `cairn db prune`).
    lineage: typeof v.lineage.run === 'string' ? { ...v.lineage, run_pruned: v.runPruned } : (v.lineage as Record<string, unknown>),
    created_at: v.createdAt.toISOString(),
  }
}

export interface RolloutJson {
  id: number
  version: number
  status: RolloutStatus
  run_id: string | null
  task_id: string | null
  plan: RolloutPlanJson
  /** Each step: its percent, window, the canary's figures in it and the decision (passed, reason). */
  steps: RolloutStepJson[]
  reason: string | null
  started_at: string
  ended_at: string | null
}

export function rolloutJson(r: RolloutRow): RolloutJson {
  return {
    id: r.id,
    version: r.version,
    status: r.status,
    run_id: r.runId,
    task_id: r.taskId,
    plan: r.plan,
    steps: r.steps,
    reason: r.reason,
    started_at: r.startedAt.toISOString(),
    ended_at: r.endedAt === null ? null : r.endedAt.toISOString(),
  }
}
