/** cairn.yaml `retention`: how long finished runs are kept (see schemas/config.schema.json). */
import type { DeploymentConfig } from './load-config.ts'
import { parseDuration } from '../time/duration.ts'

export interface RetentionSettings {
  /** Finished runs that ended longer ago than this are deleted (with their attempts, logs and history). */
  runsOlderThanMs: number
  /** How often the scheduler looks for them. @default 3600000 (1h) */
  intervalMs: number
}

/** Undefined when cairn.yaml has no `retention` (runs are kept forever). The config is already validated. */
export function retentionSettings(config: DeploymentConfig): RetentionSettings | undefined {
  const retention = config.retention
  if (retention === null || typeof retention !== 'object' || Array.isArray(retention)) return undefined
  const runsOlderThanMs = typeof retention.runs_older_than === 'string' ? parseDuration(retention.runs_older_than) : undefined
  if (runsOlderThanMs === undefined || runsOlderThanMs <= 0) return undefined
  const intervalMs = (typeof retention.interval === 'string' ? parseDuration(retention.interval) : undefined) || 3_600_000
  return { runsOlderThanMs, intervalMs }
}
