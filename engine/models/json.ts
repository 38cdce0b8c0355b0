/** The JSON shapes of models, shared by `cairn models ... --format json` and the HTTP API. */
import type { ModelSummaryRow } from '../store/models.ts'
import type { ModelVersion } from './registry.ts'

export interface ModelSummaryJson {
  name: string
  latest_version: number
  production: number | null
  canary: number | null
  created_at: string
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

export function modelSummaryJson(m: ModelSummaryRow): ModelSummaryJson {
  return { name: m.name, latest_version: m.latestVersion, production: m.production, canary: m.canary, created_at: m.createdAt.toISOString() }
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
    lineage: v.lineage as Record<string, unknown>,
    created_at: v.createdAt.toISOString(),
  }
}
