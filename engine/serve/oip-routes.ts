/**
 * The Open Inference Protocol's REST routes (SPEC section 7, "Model server"), translated onto the
 * data plane. Every answer that is not a success is `{"error": "..."}`.
 *
 *   GET  /v2                                           server metadata
 *   GET  /v2/health/live, /v2/health/ready             200, or 400 when not ready (the protocol's 4xx)
 *   GET  /v2/models/{name}[/versions/{v}]              model metadata from the ONNX graph
 *   GET  /v2/models/{name}[/versions/{v}]/ready
 *   POST /v2/models/{name}/infer                       routed by the traffic split (X-Cairn-Route-Key: sticky)
 *   POST /v2/models/{name}/versions/{v}/infer          that version
 *
 * Both infer routes take and give the Binary Tensor Data Extension's bodies (binary-tensors.ts; the
 * body parser in serve-server.ts splits a request that has its header).
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { VersionFile } from '../store/serving.ts'
import type { DataPlane, InferOutcome } from './inference.ts'
import type { ModelRepository } from './model-repository.ts'
import { BinaryBody, INFERENCE_HEADER } from './binary-tensors.ts'
import { modelMetadata } from './protocol.ts'

export const ROUTE_KEY_HEADER = 'x-cairn-route-key'
export const VERSION_HEADER = 'x-cairn-model-version'

export interface AnswerRecorder {
  /** An inference answer of a version (`versionError`: counted as the version's error). */
  answered(model: string, version: number, status: number, ms: number, versionError: boolean): void
}

interface ModelParams {
  name: string
}
interface VersionParams extends ModelParams {
  version: string
}

const VERSION = /^[1-9][0-9]{0,9}$/

export function oipRoutes(app: FastifyInstance, plane: DataPlane, repository: ModelRepository, recorder: AnswerRecorder, lookup: (model: string, version: number) => Promise<VersionFile | undefined>): void {
  const open = { config: { access: 'public' as const } }
  app.get('/v2', open, async () => ({ name: 'cairn', version: '1', extensions: ['binary_tensor_data'] }))
  app.get('/v2/health/live', open, async () => ({ live: true }))
  app.get('/v2/health/ready', open, async (_request, reply) => {
    if (repository.ready()) return { ready: true }
    return reply.code(400).send({ ready: false, error: 'the server has not loaded the versions the registry routes to yet' })
  })

  const viewer = { config: { access: 'viewer' as const } }
  app.get<{ Params: ModelParams }>('/v2/models/:name', viewer, async (request, reply) => {
    const { name } = request.params
    const meta = repository.metadata(name)
    if (!meta) return reply.code(404).send({ error: notServedMessage(repository, name) })
    return modelMetadata(name, meta.versions, meta.inputs, meta.outputs)
  })
  app.get<{ Params: ModelParams }>('/v2/models/:name/ready', viewer, async (request, reply) => {
    const { name } = request.params
    if (repository.metadata(name)) return { name, ready: true }
    if (!repository.split(name)) return reply.code(404).send({ error: notServedMessage(repository, name) })
    return reply.code(400).send({ name, ready: false, error: `no version of model ${name} that the traffic split routes to is loaded yet` })
  })
  const withVersion = async (name: string, version: string, reply: FastifyReply, fn: (meta: { inputs: unknown; outputs: unknown }) => unknown) => {
    if (!VERSION.test(version)) return reply.code(400).send({ error: `version ${JSON.stringify(version)} is not a version number (1, 2, 3, ...)` })
    const acquired = await repository.acquire(name, Number(version), () => lookup(name, Number(version)))
    if (!acquired.ok) return reply.code(acquired.status === 404 && !repository.known(name) ? 404 : acquired.status).send({ error: repository.known(name) ? acquired.error : `there is no model named ${JSON.stringify(name)}` })
    acquired.lease.release()
    return fn(acquired.lease)
  }
  app.get<{ Params: VersionParams }>('/v2/models/:name/versions/:version', viewer, async (request, reply) => {
    const { name, version } = request.params
    return withVersion(name, version, reply, (meta) => modelMetadata(name, [Number(version)], meta.inputs as never, meta.outputs as never))
  })
  app.get<{ Params: VersionParams }>('/v2/models/:name/versions/:version/ready', viewer, async (request, reply) => {
    const { name, version } = request.params
    return withVersion(name, version, reply, () => ({ name, version, ready: true }))
  })

  const answer = (model: string, outcome: InferOutcome, reply: FastifyReply) => {
    const ms = reply.elapsedTime
    if (outcome.ok) {
      recorder.answered(model, outcome.version, 200, ms, false)
      reply.header(VERSION_HEADER, String(outcome.version))
      if (outcome.binary) {
        // The JSON part, then the outputs' bytes in the order of the JSON's outputs.
        const json = Buffer.from(JSON.stringify(outcome.response))
        return reply.header(INFERENCE_HEADER, String(json.length)).type('application/octet-stream').send(Buffer.concat([json, ...outcome.binary]))
      }
      return reply.send(outcome.response)
    }
    if (outcome.version !== undefined) {
      recorder.answered(model, outcome.version, outcome.status, ms, outcome.versionError)
      reply.header(VERSION_HEADER, String(outcome.version))
      return reply.code(outcome.status).send({ error: outcome.error, model_name: model, model_version: String(outcome.version) })
    }
    return reply.code(outcome.status).send({ error: outcome.error })
  }
  app.post<{ Params: ModelParams }>('/v2/models/:name/infer', viewer, async (request, reply) => {
    const key = request.headers[ROUTE_KEY_HEADER]
    const { body } = request
    const routeKey = typeof key === 'string' ? key : undefined
    const outcome = body instanceof BinaryBody ? await plane.inferRouted(request.params.name, body.json, routeKey, body.binary) : await plane.inferRouted(request.params.name, body, routeKey)
    return answer(request.params.name, outcome, reply)
  })
  app.post<{ Params: VersionParams }>('/v2/models/:name/versions/:version/infer', viewer, async (request, reply) => {
    const { name, version } = request.params
    if (!VERSION.test(version)) return reply.code(400).send({ error: `version ${JSON.stringify(version)} is not a version number (1, 2, 3, ...)` })
    const { body } = request
    return answer(name, body instanceof BinaryBody ? await plane.inferVersion(name, Number(version), body.json, body.binary) : await plane.inferVersion(name, Number(version), body), reply)
  })
}

function notServedMessage(repository: ModelRepository, name: string): string {
  return repository.known(name) ? `model ${name} is not being served: it has no production or canary version` : `there is no model named ${JSON.stringify(name)}`
}
