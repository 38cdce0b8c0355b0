/**
 * Reads cairn.yaml (optional: a missing file means an empty configuration), validates it against
 * schemas/config.schema.json and hands it on typed (CairnConfig, generated from the same schema): code
 * that uses the configuration reads typed fields, and never re-checks shapes by hand.
 */
import { existsSync } from 'node:fs'
import type { Diagnostic } from '../dag/diagnostics.ts'
import type { DeploymentNames } from '../dag/dag-semantics.ts'
import { validateFile } from '../dag/validate-folder.ts'
import type { CairnConfig } from './config-types.ts'

export type { CairnConfig } from './config-types.ts'

export interface LoadedConfig {
  /** Undefined when the file does not exist. */
  file: string | undefined
  /** Valid when `ok`; else empty (a process must not run on a configuration that failed validation). */
  config: CairnConfig
  diagnostics: Diagnostic[]
  ok: boolean
}

export function loadConfig(path: string): LoadedConfig {
  if (!existsSync(path)) return { file: undefined, config: {}, diagnostics: [], ok: true }
  const summary = validateFile(path, { kind: 'config' }, true)
  const ok = !summary.diagnostics.some((d) => d.severity === 'error')
  // Validated against the schema the type is generated from.
  return { file: path, config: ok ? ((summary.value ?? {}) as CairnConfig) : {}, diagnostics: summary.diagnostics, ok }
}

/** Pools, clusters and (when cairn.yaml lists them) queues that DAGs may name. */
export function deploymentNames(config: CairnConfig): DeploymentNames {
  const queues = config.workers?.queues
  return { pools: new Set(Object.keys(config.pools ?? {})), clusters: new Set(Object.keys(config.clusters ?? {})), ...(queues ? { queues: new Set(queues) } : {}) }
}
