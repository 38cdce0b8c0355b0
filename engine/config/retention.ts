/** cairn.yaml `retention`: how long finished runs are kept (see schemas/config.schema.json). */
import type { CairnConfig } from './load-config.ts'
import { parseDuration } from '../time/duration.ts'

export interface RetentionSettings {
  /** Finished runs that ended longer ago than this are deleted (with their attempts, logs and history). */
  runsOlderThanMs: number
  /** How often the scheduler looks for them. @default 3600000 (1h) */
  intervalMs: number
}

const DEFAULT_INTERVAL_MS = 3_600_000

/** Undefined when cairn.yaml has no `retention` (runs are kept forever). The config is already validated. */
export function retentionSettings(config: CairnConfig): RetentionSettings | undefined {
  if (!config.retention) return undefined
  const runsOlderThanMs = parseDuration(config.retention.runs_older_than)
  if (runsOlderThanMs === undefined || runsOlderThanMs <= 0) return undefined
  const intervalMs = (config.retention.interval !== undefined ? parseDuration(config.retention.interval) : undefined) || DEFAULT_INTERVAL_MS
  return { runsOlderThanMs, intervalMs }
}
