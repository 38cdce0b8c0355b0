/**
 * The versions this server has loaded and the traffic split it routes by (KServe's ModelRepository).
 *
 * Swaps fail no request: `apply` loads every version the new registry state routes to before it
 * switches the split (one synchronous assignment), and a version that leaves the split is released
 * only when the last request that acquired it has finished. A request acquires its version
 * synchronously when it is routed, so it never meets a released session.
 *
 * A version named in a request's path but outside the split (a candidate, say) is loaded on demand
 * and released after `idleMs` without use.
 */
import path from 'node:path'
import type { Logger } from 'pino'
import type { RoutingSnapshot, ServedVersionRow, VersionFile } from '../store/serving.ts'
import { canBatch, createBatcher } from './batcher.ts'
import type { BatchOptions, RunFn } from './batcher.ts'
import type { OnnxModel } from './onnx-session.ts'
import type { TensorSpec } from './protocol.ts'
import type { Split } from './traffic.ts'

export type LoadModel = (file: string) => Promise<OnnxModel>

export interface Lease {
  model: string
  version: number
  inputs: readonly TensorSpec[]
  outputs: readonly TensorSpec[]
  /** The feature columns recorded with the version (for enrichment from the online store). */
  features: readonly string[]
  run: RunFn
  /** Call once the request is done with the version. */
  release(): void
}

/** Why a version cannot serve: not registered (404), or its file could not be loaded (500). */
export type Acquired = { ok: true; lease: Lease } | { ok: false; status: 404 | 500; error: string }

export interface ModelRepositoryOptions {
  /** The data directory (artifacts are relative to it). */
  dataDir: string
  load: LoadModel
  log: Logger
  /** Dynamic batching, when on. */
  batching?: BatchOptions
  /** An on-demand version is released after this long unused. @default 60000 */
  idleMs?: number
  /** A version that failed to load is tried again after this long. @default 10000 */
  retryLoadMs?: number
  now?: () => number
}

interface Entry {
  model: string
  version: number
  sha256: string
  features: string[]
  loading?: Promise<void>
  onnx?: OnnxModel
  run?: RunFn
  failed?: { error: string; at: number }
  inFlight: number
  routed: boolean
  lastUsed: number
  /** No new request may take it; released at inFlight 0. */
  retired: boolean
}

export interface ModelRepository {
  /** The split of a served model; undefined when it has neither production nor canary. */
  split(model: string): Split | undefined
  /** Whether a model of this name is registered (as of the last registry read). */
  known(model: string): boolean
  /** A routed version, taken for one request (synchronous: see above). */
  acquireRouted(model: string, version: number): Acquired
  /** Any registered version, loaded if needed. `lookup` reads its file from the registry. */
  acquire(model: string, version: number, lookup: () => Promise<VersionFile | undefined>): Promise<Acquired>
  /** The metadata of a served model: its routed versions and the inputs and outputs of production (else the canary). */
  metadata(model: string): { versions: number[]; inputs: TensorSpec[]; outputs: TensorSpec[] } | undefined
  /** Follows a new registry state: loads, then switches, then retires. */
  apply(snapshot: RoutingSnapshot): Promise<void>
  /** Every routed version loaded (or failed to load). */
  ready(): boolean
  /** Releases idle on-demand versions. */
  sweep(): void
  /** Loaded versions: [model, version, routed]. */
  loaded(): { model: string; version: number; routed: boolean; share: number }[]
  close(): Promise<void>
}

export function createModelRepository(options: ModelRepositoryOptions): ModelRepository {
  const now = options.now ?? Date.now
  const idleMs = options.idleMs ?? 60_000
  const retryLoadMs = options.retryLoadMs ?? 10_000
  const entries = new Map<string, Entry>()
  let splits = new Map<string, Split>()
  let models = new Set<string>()
  let applied = false
  /** Requests holding a version now, over all versions: above one, a run has HTTP work to overlap with. */
  let active = 0
  const key = (model: string, version: number) => `${model}/${version}`

  function load(entry: Entry, artifact: string): Promise<void> {
    entry.loading ??= (async () => {
      try {
        const onnx = await options.load(path.join(options.dataDir, artifact))
        entry.onnx = onnx
        const run: RunFn = (t) => onnx.run(t, { overlap: active > 1 })
        entry.run = options.batching && canBatch(onnx.inputs, onnx.outputs) ? createBatcher(run, options.batching) : run
        entry.failed = undefined
        options.log.info({ model: entry.model, version: entry.version }, 'model version loaded')
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error)
        entry.failed = { error: message, at: now() }
        options.log.warn({ model: entry.model, version: entry.version, error: message }, 'model version cannot be loaded')
      } finally {
        entry.loading = undefined
      }
    })()
    return entry.loading
  }

  function entryFor(model: string, version: number, sha256: string, features: string[]): Entry {
    const k = key(model, version)
    let entry = entries.get(k)
    if (!entry || entry.retired) {
      entry = { model, version, sha256, features, inFlight: 0, routed: false, lastUsed: now(), retired: false }
      entries.set(k, entry)
    }
    return entry
  }

  function retire(entry: Entry): void {
    entry.retired = true
    if (entries.get(key(entry.model, entry.version)) === entry) entries.delete(key(entry.model, entry.version))
    if (entry.inFlight === 0) void releaseSession(entry)
  }

  async function releaseSession(entry: Entry): Promise<void> {
    const onnx = entry.onnx
    entry.onnx = undefined
    entry.run = undefined
    if (!onnx) return
    try {
      await onnx.release()
      options.log.info({ model: entry.model, version: entry.version }, 'model version unloaded')
    } catch (error) {
      options.log.warn({ err: error, model: entry.model, version: entry.version }, 'releasing a model version failed')
    }
  }

  function take(entry: Entry): Acquired {
    if (!entry.onnx || !entry.run) {
      const why = entry.failed ? entry.failed.error : 'it is still loading'
      return { ok: false, status: 500, error: `version ${entry.version} of model ${entry.model} cannot serve: ${why}` }
    }
    entry.inFlight++
    active++
    entry.lastUsed = now()
    const { onnx, run } = entry
    let released = false
    return {
      ok: true,
      lease: {
        model: entry.model,
        version: entry.version,
        inputs: onnx.inputs,
        outputs: onnx.outputs,
        features: entry.features,
        run,
        release() {
          if (released) return
          released = true
          entry.inFlight--
          active--
          if (entry.retired && entry.inFlight === 0) void releaseSession(entry)
        },
      },
    }
  }

  return {
    split: (model) => splits.get(model),
    known: (model) => models.has(model) || splits.has(model),
    acquireRouted(model, version) {
      const entry = entries.get(key(model, version))
      if (!entry) return { ok: false, status: 500, error: `version ${version} of model ${model} is not loaded on this server` }
      return take(entry)
    },
    async acquire(model, version, lookup) {
      let entry = entries.get(key(model, version))
      if (!entry || (!entry.onnx && !entry.loading && (!entry.failed || now() - entry.failed.at >= retryLoadMs))) {
        const row = await lookup()
        if (!row) return { ok: false, status: 404, error: `model ${model} has no version ${version}` }
        entry = entryFor(model, version, row.sha256, row.features)
        if (!entry.onnx) await load(entry, row.artifact)
      } else if (entry.loading) await entry.loading
      return take(entry)
    },
    metadata(model) {
      const split = splits.get(model)
      if (!split) return undefined
      const versions = [split.production, split.canary].filter((v): v is number => v !== undefined)
      for (const v of versions) {
        const onnx = entries.get(key(model, v))?.onnx
        if (onnx) return { versions: versions.toSorted((a, b) => a - b), inputs: onnx.inputs, outputs: onnx.outputs }
      }
      return undefined
    },
    async apply(snapshot) {
      const wanted = new Map<string, ServedVersionRow>()
      for (const row of snapshot.versions) wanted.set(key(row.model, row.version), row)
      // 1. Load what the new split needs (a failed load is retried after a while).
      await Promise.all(
        [...wanted.values()].map((row) => {
          const entry = entryFor(row.model, row.version, row.sha256, row.features)
          if (entry.onnx) return undefined
          if (entry.loading) return entry.loading
          if (entry.failed && now() - entry.failed.at < retryLoadMs) return undefined
          return load(entry, row.artifact)
        }),
      )
      // 2. Switch, in one step.
      const next = new Map<string, Split>()
      for (const row of wanted.values()) {
        const split = next.get(row.model) ?? { production: undefined, canary: undefined, canaryShare: 0 }
        if (row.stage === 'production') split.production = row.version
        else {
          split.canary = row.version
          split.canaryShare = row.trafficShare
        }
        next.set(row.model, split)
      }
      splits = next
      models = new Set(snapshot.models)
      applied = true
      // 3. Retire what left the split (released once its requests are done).
      for (const entry of [...entries.values()]) {
        const routed = wanted.has(key(entry.model, entry.version))
        if (entry.routed && !routed) retire(entry)
        else entry.routed = routed
      }
    },
    ready: () => applied && [...entries.values()].every((e) => !e.routed || e.onnx !== undefined || e.failed !== undefined),
    sweep() {
      const t = now()
      for (const entry of [...entries.values()]) if (!entry.routed && !entry.loading && t - entry.lastUsed >= idleMs) retire(entry)
    },
    loaded() {
      return [...entries.values()].filter((e) => e.onnx).map((e) => {
        const split = splits.get(e.model)
        const share = !split || !e.routed ? 0 : split.canary === e.version ? (split.production === undefined ? 1 : split.canaryShare) : split.canary === undefined ? 1 : 1 - split.canaryShare
        return { model: e.model, version: e.version, routed: e.routed, share }
      })
    },
    async close() {
      const all = [...entries.values()]
      entries.clear()
      splits = new Map()
      await Promise.all(all.map((e) => (e.loading ?? Promise.resolve()).then(() => releaseSession(e))))
    },
  }
}
