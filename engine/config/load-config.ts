/** Reads cairn.yaml (optional: a missing file means an empty configuration) and validates it. */
import { existsSync } from 'node:fs'
import type { Diagnostic } from '../dag/diagnostics.ts'
import type { DeploymentNames } from '../dag/dag-semantics.ts'
import { validateFile } from '../dag/validate-folder.ts'
import type { Json } from '../dag/yaml-load.ts'

export type DeploymentConfig = { [key: string]: Json }

export interface LoadedConfig {
  /** Undefined when the file does not exist. */
  file: string | undefined
  config: DeploymentConfig
  diagnostics: Diagnostic[]
  ok: boolean
}

export function loadConfig(path: string): LoadedConfig {
  if (!existsSync(path)) return { file: undefined, config: {}, diagnostics: [], ok: true }
  const summary = validateFile(path, { kind: 'config' }, true)
  const ok = !summary.diagnostics.some((d) => d.severity === 'error')
  return { file: path, config: summary.value ?? {}, diagnostics: summary.diagnostics, ok }
}

/** Pools and clusters that DAGs may name. */
export function deploymentNames(config: DeploymentConfig): DeploymentNames {
  const keys = (value: Json | undefined): string[] => (value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value) : [])
  return { pools: new Set(keys(config.pools)), clusters: new Set(keys(config.clusters)) }
}
