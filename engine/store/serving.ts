/** What the model server reads from the registry (migrations 0014, 0016): the versions it routes to. */
import type { Queryable } from './queryable.ts'

export const MODELS_CHANNEL = 'cairn_models'

export interface ServedVersionRow {
  model: string
  version: number
  stage: 'production' | 'canary'
  trafficShare: number
  /** Relative to the data directory. */
  artifact: string
  sha256: string
  /** The feature columns recorded with the version (its first input's columns, in order). */
  features: string[]
}

export interface RoutingSnapshot {
  /** Every model's name (a model without production or canary is known, but not served). */
  models: string[]
  versions: ServedVersionRow[]
}

export async function readRoutingSnapshot(q: Queryable): Promise<RoutingSnapshot> {
  const [models, versions] = await Promise.all([
    q.query<{ name: string }>(`SELECT name FROM cairn.model ORDER BY name`),
    q.query<{ model: string; version: number; stage: 'production' | 'canary'; traffic_share: number; artifact: string; sha256: string; features: string[] }>(
      `SELECT model, version, stage, traffic_share, artifact, sha256, features FROM cairn.model_version WHERE stage IN ('production', 'canary') ORDER BY model, version`,
    ),
  ])
  return {
    models: models.rows.map((r) => r.name),
    versions: versions.rows.map((r) => ({ model: r.model, version: r.version, stage: r.stage, trafficShare: r.traffic_share, artifact: r.artifact, sha256: r.sha256, features: r.features })),
  }
}

export interface VersionFile {
  artifact: string
  sha256: string
  features: string[]
}

/** One version's file, for a request that names a version outside the traffic split. */
export async function readVersionArtifact(q: Queryable, model: string, version: number): Promise<VersionFile | undefined> {
  const { rows } = await q.query<VersionFile>(`SELECT artifact, sha256, features FROM cairn.model_version WHERE model = $1 AND version = $2`, [model, version])
  return rows[0]
}
