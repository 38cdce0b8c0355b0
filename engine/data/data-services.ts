/**
 * What the data operators get in OperatorContext.data: the datasets, the connections of cairn.yaml,
 * the folders file sources may read, and a place for artifacts. Built per attempt by the worker, so
 * that publishing is fenced by that attempt's claim. Operators never import engine internals; they
 * reach the stores only through this.
 */
import { join } from 'node:path'
import type { ClusterSetting, DataSettings, SshHostsEntry } from '../config/data-settings.ts'
import type { Db } from '../store/db.ts'
import { createDatasets } from './datasets.ts'
import type { Datasets, Producer } from './datasets.ts'
import type { DuckDbOptions } from './duckdb.ts'
import { createFeatureStore } from './feature-store.ts'
import type { FeatureStore } from './feature-store.ts'
import { createModels } from '../models/registry.ts'
import type { Models } from '../models/registry.ts'
import { createRollouts } from '../models/rollouts.ts'
import type { Rollouts } from '../models/rollouts.ts'
import { readServingWindow } from '../serve/serving-stats.ts'

export interface ResolvedConnection {
  name: string
  kind: 'postgres' | 'http'
  url: string
}

export interface DataServices {
  datasets: Datasets
  /**
   * Feature views (definitions as the DAG sync stored them), materialization into the offline and
   * online stores, point-in-time training sets, online reads.
   */
  features: FeatureStore
  /** The model registry (SPEC section 7): register versions (fenced by the attempt's claim), read, resolve references. */
  models: Models
  /** Canary rollouts (`serve.rollout`): the recorded state, stage and share changes (fenced by the attempt's claim), the servers' figures. */
  rollouts: Rollouts
  /** A connection of cairn.yaml with its URL (from `url`, or the variable named by `url_env`); a message when it cannot be used. */
  connection(name: string): ResolvedConnection | { error: string }
  /** Folders that file sources may read (DAG folder, CAIRN_HOME, data.allowed_paths): check paths after resolving links. */
  allowedPaths: readonly string[]
  /** Relative file paths of sources are resolved against the DAG folder. */
  dagsFolder: string
  /** Settings for the operator's own DuckDB (threads, memory). */
  duckdb: DuckDbOptions
  /** `clusters` of cairn.yaml (train's ssh and slurm executors). */
  clusters: Readonly<Record<string, ClusterSetting>>
  /** `ssh_hosts` of cairn.yaml (the login node of a Slurm cluster that submits over SSH). */
  sshHosts: Readonly<Record<string, SshHostsEntry>>
  /** The model servers of cairn.yaml (serve.rollout's `server`): `default`, then the names of `model_servers`. */
  modelServers: readonly string[]
  /** A folder for files that outlive the attempt (reports, models): made on first use by the operator. */
  artifactsDir: string
}

export interface AttemptIdentity {
  dagId: string
  runId: string
  taskId: string
  attempt: number
  claimId: string
}

export function createDataServices(db: Db, settings: DataSettings, at: AttemptIdentity, env: Readonly<Record<string, string | undefined>>): DataServices {
  const producer: Producer = { kind: 'attempt', runId: at.runId, taskId: at.taskId, attempt: at.attempt, claimId: at.claimId }
  const datasets = createDatasets({ db, dir: settings.dir, producer, duckdb: settings.duckdb })
  return {
    datasets,
    features: createFeatureStore({ db, datasets, producer, duckdb: settings.duckdb }),
    models: createModels({ db, dir: settings.dir, producer }),
    rollouts: createRollouts({ db, producer, servingWindow: readServingWindow }),
    connection: (name) => resolveConnection(settings, name, env),
    allowedPaths: settings.allowedPaths,
    dagsFolder: settings.dagsFolder,
    duckdb: settings.duckdb,
    clusters: settings.clusters,
    sshHosts: settings.sshHosts,
    modelServers: settings.modelServers,
    artifactsDir: join(settings.home, 'artifacts', at.dagId, at.runId, at.taskId, String(at.attempt)),
  }
}

export function resolveConnection(settings: DataSettings, name: string, env: Readonly<Record<string, string | undefined>>): ResolvedConnection | { error: string } {
  const c = Object.hasOwn(settings.connections, name) ? settings.connections[name] : undefined
  if (!c) {
    const known = Object.keys(settings.connections)
    return { error: `connection ${JSON.stringify(name)} is not defined in cairn.yaml (connections: ${known.length > 0 ? known.join(', ') : 'none'})` }
  }
  const url = c.url ?? (c.urlEnv !== undefined ? env[c.urlEnv] : undefined)
  if (url === undefined || url === '') return { error: `connection ${name}: the environment variable ${c.urlEnv} named by its url_env is not set on this worker` }
  return { name, kind: c.kind, url }
}
