/** cairn.yaml `data` and `connections`, resolved once for the processes that run data operators. */
import { resolve } from 'node:path'
import type { CairnConfig } from './load-config.ts'
import type { DuckDbOptions } from '../data/duckdb.ts'

export interface ConnectionSetting {
  kind: 'postgres' | 'http'
  /** Written in cairn.yaml, or undefined when it comes from `urlEnv`. */
  url?: string
  /** Name of the environment variable holding the URL. */
  urlEnv?: string
}

export interface DataSettings {
  /** Datasets and offline features (absolute). @default CAIRN_HOME/datasets */
  dir: string
  /** The DAG folder: relative file paths of ingest sources are resolved against it. */
  dagsFolder: string
  /** CAIRN_HOME (absolute). */
  home: string
  /** Folders file sources may read: the DAG folder, CAIRN_HOME and data.allowed_paths (absolute, not yet resolved through links). */
  allowedPaths: string[]
  duckdb: DuckDbOptions
  connections: Readonly<Record<string, ConnectionSetting>>
  /** `clusters` of cairn.yaml, as validated (train's ssh and slurm executors). */
  clusters: Readonly<Record<string, ClusterSetting>>
  /** `ssh_hosts` of cairn.yaml (a Slurm cluster's login node, `submit: { via: ssh, host: NAME }`). */
  sshHosts: Readonly<Record<string, SshHostsEntry>>
  /** The names of `model_servers` in cairn.yaml (serve.rollout's `server`); `default` is always one. */
  modelServers: readonly string[]
}

export type ClusterSetting = NonNullable<CairnConfig['clusters']>[string]
export type SshHostsEntry = NonNullable<NonNullable<CairnConfig['ssh_hosts']>[string]>

export function dataSettings(config: CairnConfig, where: { cwd: string; home: string; dagsFolder: string }): DataSettings {
  const dagsFolder = resolve(where.cwd, where.dagsFolder)
  const home = resolve(where.cwd, where.home)
  const data = config.data ?? {}
  const duckdb: DuckDbOptions = {}
  if (data.duckdb_threads !== undefined) duckdb.threads = data.duckdb_threads
  if (data.duckdb_memory !== undefined) duckdb.memory = data.duckdb_memory
  const connections: Record<string, ConnectionSetting> = {}
  for (const [name, entry] of Object.entries(config.connections ?? {})) {
    // The generated type of a oneOf is loose; the schema has checked the shape.
    const c = entry as { kind: 'postgres' | 'http'; url?: string; url_env?: string }
    connections[name] = { kind: c.kind, ...(c.url !== undefined ? { url: c.url } : {}), ...(c.url_env !== undefined ? { urlEnv: c.url_env } : {}) }
  }
  return {
    dir: data.dir !== undefined ? resolve(where.cwd, data.dir) : resolve(home, 'datasets'),
    dagsFolder,
    home,
    allowedPaths: [dagsFolder, home, ...(data.allowed_paths ?? []).map((p) => resolve(where.cwd, p))],
    duckdb,
    connections,
    clusters: config.clusters ?? {},
    sshHosts: Object.fromEntries(Object.entries(config.ssh_hosts ?? {}).filter((entry): entry is [string, SshHostsEntry] => entry[1] !== undefined)),
    modelServers: modelServerNames(config),
  }
}

/** The model servers a DAG may name: `default` (the one `cairn up` runs), then those of `model_servers`. */
export function modelServerNames(config: CairnConfig): string[] {
  return ['default', ...Object.keys(config.model_servers ?? {}).filter((name) => name !== 'default')]
}

/** Why `server` cannot be served to: the message of `cairn validate` (UNKNOWN_MODEL_SERVER) and of serve.rollout at run time. */
export function unknownModelServerMessage(server: string, declared: readonly string[]): string {
  return `server ${JSON.stringify(server)} is not a model server of cairn.yaml (declared: ${declared.join(', ')}; default is the one \`cairn up\` runs); add it under model_servers or name one of these`
}
