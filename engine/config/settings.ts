/**
 * Process settings from the environment (SPEC section 5), read once by the CLI entry point and
 * passed down; nothing else reads process.env.
 */
import { resolve } from 'node:path'

export interface Settings {
  /** DAG folder. @default "dags" (CAIRN_DAGS) */
  dagsFolder: string
  /** State folder: embedded database, logs, artifacts. @default ".cairn" (CAIRN_HOME) */
  home: string
  /** Shared Postgres instead of the embedded one. @default undefined (DATABASE_URL) */
  databaseUrl: string | undefined
  /** Web port. @default 8080 (CAIRN_PORT) */
  port: number
  /** Deployment configuration file. @default "cairn.yaml" (CAIRN_CONFIG) */
  configPath: string
  /** pino level of the engine's own logs. @default "info" (CAIRN_LOG_LEVEL) */
  logLevel: string
  /** The process environment, handed to workers for the processes they start. */
  env: Readonly<Record<string, string | undefined>>
  cwd: string
}

export function settingsFromEnv(env: NodeJS.ProcessEnv, cwd: string): Settings {
  const port = Number(env.CAIRN_PORT ?? 8080)
  return {
    dagsFolder: env.CAIRN_DAGS || 'dags',
    home: resolve(cwd, env.CAIRN_HOME || '.cairn'),
    databaseUrl: env.DATABASE_URL || undefined,
    port: Number.isInteger(port) && port > 0 && port < 65536 ? port : 8080,
    configPath: env.CAIRN_CONFIG || 'cairn.yaml',
    logLevel: env.CAIRN_LOG_LEVEL || 'info',
    env,
    cwd,
  }
}
