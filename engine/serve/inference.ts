/**
 * The protocol-neutral data plane (KServe's DataPlane): route a request to a version, check its
 * tensors against that version, run it, and say whose fault a failure is, for the figures a rollout
 * analyses (serving-stats.ts). The HTTP routes (oip-routes.ts) only translate.
 */
import type { OnlineStore } from '../data/online-store.ts'
import type { VersionFile } from '../store/serving.ts'
import { enrichedBody, entitiesOf } from './enrich.ts'
import type { ModelRepository, Lease } from './model-repository.ts'
import { acceptedBy, inferAnswer, parseInferRequest } from './protocol.ts'
import type { InferResponse } from './protocol.ts'
import { chooseVersion } from './traffic.ts'

export type InferOutcome =
  /** `binary`: the binary data of the outputs answered as such, to follow the response's JSON. */
  | { ok: true; version: number; response: InferResponse; binary?: Uint8Array[] }
  /**
   * `version`: the version that was to answer (undefined when none was reached); `versionError`: the
   * failure is the version's (counted as its error), not the client's.
   */
  | { ok: false; status: number; error: string; version?: number; versionError: boolean }

/**
 * `body` is the request's JSON; `binary` the bytes after it in a body of the Binary Tensor Data
 * Extension (binary-tensors.ts), undefined for a plain JSON body.
 */
export interface DataPlane {
  /** POST /v2/models/{model}/infer: routed by the traffic split (sticky with a route key). */
  inferRouted(model: string, body: unknown, routeKey: string | undefined, binary?: Uint8Array): Promise<InferOutcome>
  /** POST /v2/models/{model}/versions/{version}/infer */
  inferVersion(model: string, version: number, body: unknown, binary?: Uint8Array): Promise<InferOutcome>
}

export interface DataPlaneOptions {
  repository: ModelRepository
  /** A registered version's file, for versions outside the split. */
  lookup(model: string, version: number): Promise<VersionFile | undefined>
  /** Feature enrichment (enrich.ts); without it, requests that name entities are refused. */
  onlineStore?: OnlineStore
  random?: () => number
}

export function createDataPlane(options: DataPlaneOptions): DataPlane {
  const { repository } = options

  function notServed(model: string): InferOutcome {
    return repository.known(model)
      ? { ok: false, status: 404, error: `model ${model} is not being served: it has no production or canary version (a version can be called by number: /v2/models/${model}/versions/N/infer)`, versionError: false }
      : { ok: false, status: 404, error: `there is no model named ${JSON.stringify(model)}`, versionError: false }
  }

  async function run(lease: Lease, given: unknown, binary: Uint8Array | undefined, blame: (error: string) => InferOutcome): Promise<InferOutcome> {
    let body = given
    const entities = entitiesOf(given)
    if (entities) {
      const clientError = (error: string): InferOutcome => ({ ok: false, status: 400, error, version: lease.version, versionError: false })
      if (!entities.ok) return clientError(entities.error)
      if (!options.onlineStore) return clientError('this server does not read features from the online store; send "inputs"')
      const enriched = await enrichedBody(given as object, entities.value, lease.features, lease.inputs, options.onlineStore)
      if (!enriched.ok) return clientError(`version ${lease.version} of model ${lease.model}: ${enriched.error}`)
      body = enriched.value
    }
    const parsed = parseInferRequest(body, lease.inputs, lease.outputs, binary)
    if (!parsed.ok) return blame(parsed.error)
    try {
      const outputs = await lease.run(parsed.value.inputs)
      const { response, binary: parts } = inferAnswer(lease.model, lease.version, parsed.value, outputs)
      return parts === undefined ? { ok: true, version: lease.version, response } : { ok: true, version: lease.version, response, binary: parts }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      return { ok: false, status: 500, error: `version ${lease.version} of model ${lease.model} failed on this request: ${message}`, version: lease.version, versionError: true }
    }
  }

  return {
    async inferRouted(model, body, routeKey, binary) {
      const split = repository.split(model)
      if (!split) return notServed(model)
      const version = chooseVersion(split, routeKey, options.random)
      if (version === undefined) return notServed(model)
      const acquired = repository.acquireRouted(model, version)
      if (!acquired.ok) return { ok: false, status: acquired.status, error: acquired.error, version, versionError: true }
      const { lease } = acquired
      try {
        return await run(lease, body, binary, (error) => {
          // Refused by a version that is not production, though production would take it: the
          // version is broken for real traffic (a canary with the wrong input shape).
          const production = split.production
          if (production !== undefined && production !== version) {
            const other = repository.acquireRouted(model, production)
            if (other.ok) {
              const takes = acceptedBy(body, other.lease, binary)
              other.lease.release()
              if (takes) return { ok: false, status: 500, error: `version ${version} of model ${model} cannot take this request, which production version ${production} takes: ${error}`, version, versionError: true }
            }
          }
          return { ok: false, status: 400, error, version, versionError: false }
        })
      } finally {
        lease.release()
      }
    },
    async inferVersion(model, version, body, binary) {
      const acquired = await repository.acquire(model, version, () => options.lookup(model, version))
      if (!acquired.ok) {
        if (acquired.status === 404) return repository.known(model) ? { ok: false, status: 404, error: acquired.error, versionError: false } : notServed(model)
        return { ok: false, status: acquired.status, error: acquired.error, version, versionError: true }
      }
      const { lease } = acquired
      try {
        return await run(lease, body, binary, (error) => ({ ok: false, status: 400, error, version, versionError: false }))
      } finally {
        lease.release()
      }
    },
  }
}
