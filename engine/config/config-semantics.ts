/** Checks of cairn.yaml that its JSON Schema cannot express: names that refer to other entries. */
import type { SemanticProblem } from '../dag/dag-semantics.ts'
import type { Json } from '../dag/yaml-load.ts'
import { MIN_LOG_BYTES, parseSize } from './sizes.ts'

type JsonObject = { [key: string]: Json }
const isObject = (value: Json | undefined): value is JsonObject => value !== null && typeof value === 'object' && !Array.isArray(value)

export function checkConfigSemantics(config: Json): SemanticProblem[] {
  const problems: SemanticProblem[] = []
  if (!isObject(config)) return problems
  const sshHosts = isObject(config.ssh_hosts) ? Object.keys(config.ssh_hosts) : []
  const clusters = isObject(config.clusters) ? config.clusters : {}
  for (const [name, cluster] of Object.entries(clusters)) {
    if (!isObject(cluster) || !isObject(cluster.submit)) continue
    const host = cluster.submit.host
    if (typeof host === 'string' && !sshHosts.includes(host)) {
      problems.push({
        code: 'INVALID_VALUE',
        message: `clusters.${name}.submit.host "${host}" is not an entry of ssh_hosts (defined: ${sshHosts.join(', ') || 'none'})`,
        path: ['clusters', name, 'submit', 'host'],
      })
    }
  }
  const retention = config.retention
  if (isObject(retention)) {
    for (const key of ['runs_older_than', 'interval'] as const) {
      const value = retention[key]
      if (typeof value === 'string' && /^(0+(ms|s|m|h|d))+$/.test(value)) {
        problems.push({ code: 'INVALID_VALUE', message: `retention.${key} must be longer than 0, not "${value}"`, path: ['retention', key] })
      }
    }
  }
  const workers = config.workers
  if (isObject(workers) && (typeof workers.max_log_bytes === 'number' || typeof workers.max_log_bytes === 'string')) {
    let bytes: number | undefined
    try {
      bytes = parseSize(workers.max_log_bytes)
    } catch {
      // the schema reports the form
    }
    if (bytes !== undefined && bytes < MIN_LOG_BYTES) {
      problems.push({ code: 'INVALID_VALUE', message: `workers.max_log_bytes must be at least 64KB (${MIN_LOG_BYTES} bytes), got ${JSON.stringify(workers.max_log_bytes)}`, path: ['workers', 'max_log_bytes'] })
    }
  }
  return problems
}
