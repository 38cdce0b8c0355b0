/**
 * Reads cairn.yaml (optional: a missing file means an empty configuration), validates it against
 * schemas/config.schema.json and hands it on typed (CairnConfig, generated from the same schema): code
 * that uses the configuration reads typed fields, and never re-checks shapes by hand.
 *
 * CAIRN_CONFIG may name several files separated by `:` (as KUBECONFIG does), e.g.
 * `cairn.yaml:/tmp/cairn-local-cluster/cairn.yaml`: each is validated on its own, then they are merged in
 * order: a top-level mapping (clusters, pools, connections, web, ...) is merged entry by entry, a later
 * file's entry replacing an earlier one's as a whole; any other top-level value is replaced. A missing
 * file among several is an error (a configuration the user named must not silently go missing).
 */
import { existsSync } from 'node:fs'
import { delimiter, resolve } from 'node:path'
import type { Diagnostic } from '../dag/diagnostics.ts'
import type { DeploymentNames } from '../dag/dag-semantics.ts'
import { validateFile } from '../dag/validate-folder.ts'
import type { CairnConfig } from './config-types.ts'
import { modelServerNames } from './data-settings.ts'

export type { CairnConfig } from './config-types.ts'

export interface LoadedConfig {
  /** Undefined when no file exists; the files read, joined by `:`, when several were named. */
  file: string | undefined
  /** Valid when `ok`; else empty (a process must not run on a configuration that failed validation). */
  config: CairnConfig
  diagnostics: Diagnostic[]
  ok: boolean
}

/** `path`: one file, or several separated by `:` (relative ones resolved against `cwd`). */
export function loadConfig(path: string, cwd: string = process.cwd()): LoadedConfig {
  const files = path.split(delimiter).filter((p) => p !== '').map((p) => resolve(cwd, p))
  if (files.length <= 1) return loadOne(files[0] ?? resolve(cwd, 'cairn.yaml'))
  const diagnostics: Diagnostic[] = []
  const merged: Record<string, unknown> = {}
  for (const file of files) {
    if (!existsSync(file)) {
      diagnostics.push({ file, line: 1, column: 1, path: '', code: 'FILE_READ', message: `configuration file not found (named in ${JSON.stringify(path)})`, severity: 'error' })
      continue
    }
    const one = loadOne(file)
    diagnostics.push(...one.diagnostics)
    for (const [key, value] of Object.entries(one.config)) {
      const before = merged[key]
      merged[key] = isMapping(before) && isMapping(value) ? { ...before, ...value } : value
    }
  }
  const ok = !diagnostics.some((d) => d.severity === 'error')
  return { file: files.join(delimiter), config: ok ? (merged as CairnConfig) : {}, diagnostics, ok }
}

function loadOne(path: string): LoadedConfig {
  if (!existsSync(path)) return { file: undefined, config: {}, diagnostics: [], ok: true }
  const summary = validateFile(path, { kind: 'config' }, true)
  const ok = !summary.diagnostics.some((d) => d.severity === 'error')
  // Validated against the schema the type is generated from.
  return { file: path, config: ok ? ((summary.value ?? {}) as CairnConfig) : {}, diagnostics: summary.diagnostics, ok }
}

const isMapping = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value)

/** Pools, clusters, model servers and (when cairn.yaml lists them) queues that DAGs may name. */
export function deploymentNames(config: CairnConfig): DeploymentNames {
  const queues = config.workers?.queues
  return {
    pools: new Set(Object.keys(config.pools ?? {})),
    clusters: new Set(Object.keys(config.clusters ?? {})),
    ...(queues ? { queues: new Set(queues) } : {}),
    modelServers: new Set(modelServerNames(config)),
  }
}
