/**
 * Feature enrichment: a request may name entities instead of sending the model's input, and the
 * server builds that input from the online store (SPEC section 7, "Feeding a model": the version's
 * recorded features form its first input, [rows, features] FP32, in that order).
 *
 *   {"parameters": {"entities": [{"user_id": "u007"}, {"user_id": "u012"}]}}
 *
 * A feature recorded as `VIEW__FEATURE` (as `features.training_set` names its columns) is read from
 * view VIEW's online row of the entity (one lookup per view for all the request's entities); a null
 * (no row, a value older than the view's ttl) becomes 0, as the trainer fills nulls, and a boolean
 * 1 or 0. Each entity object holds the entity columns of the views, and nothing else.
 */
import type { OnlineStore } from '../data/online-store.ts'
import type { Parsed, TensorSpec } from './protocol.ts'

/** The entities of an enrichment request, or undefined when the request sends its inputs itself. */
export function entitiesOf(body: unknown): Parsed<Record<string, unknown>[]> | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const parameters = (body as { parameters?: unknown }).parameters
  if (typeof parameters !== 'object' || parameters === null || !('entities' in parameters)) return undefined
  const entities = (parameters as { entities: unknown }).entities
  if ((body as { inputs?: unknown }).inputs !== undefined) return { ok: false, error: 'send either "inputs" or "parameters": {"entities"}, not both' }
  if (!Array.isArray(entities) || entities.length === 0 || !entities.every((e) => typeof e === 'object' && e !== null && !Array.isArray(e))) {
    return { ok: false, error: '"parameters.entities" must be a non-empty array of objects, each with the entity columns of the model\'s feature views' }
  }
  return { ok: true, value: entities as Record<string, unknown>[] }
}

/** The request body with the model's first input built from the online store. */
export async function enrichedBody(body: object, entities: readonly Record<string, unknown>[], features: readonly string[], inputs: readonly TensorSpec[], store: OnlineStore): Promise<Parsed<object>> {
  if (features.length === 0) return { ok: false, error: 'this version has no recorded feature list to read from the online store; send "inputs"' }
  const first = inputs[0]
  if (!first || inputs.length !== 1 || first.datatype !== 'FP32' || first.shape.length !== 2 || (first.shape[1] !== -1 && first.shape[1] !== features.length)) {
    return { ok: false, error: 'this version cannot be fed from the online store: that needs one FP32 input [rows, features] with as many features as were recorded when it was registered' }
  }
  const byView = new Map<string, { feature: string; column: number }[]>()
  for (const [column, name] of features.entries()) {
    const at = name.indexOf('__')
    if (at <= 0) return { ok: false, error: `feature ${JSON.stringify(name)} of this version does not come from a feature view (VIEW__FEATURE); send "inputs"` }
    const view = name.slice(0, at)
    byView.set(view, [...(byView.get(view) ?? []), { feature: name.slice(at + 2), column }])
  }
  const width = features.length
  const data = new Array<number>(entities.length * width).fill(0)
  for (const [view, wanted] of byView) {
    const result = await store.read(view, entities)
    if (!result.ok) return { ok: false, error: result.message }
    for (const [row, value] of result.values.entries()) {
      for (const { feature, column } of wanted) {
        const v = value.features[feature]
        if (v === null || v === undefined) continue
        if (typeof v === 'boolean') data[row * width + column] = v ? 1 : 0
        else if (typeof v === 'number' && Number.isFinite(v)) data[row * width + column] = v
        else if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) data[row * width + column] = Number(v)
        else return { ok: false, error: `feature ${view}__${feature} of entity ${row + 1} is ${JSON.stringify(v)}, not a number` }
      }
    }
  }
  const { parameters: _parameters, ...rest } = body as Record<string, unknown>
  return { ok: true, value: { ...rest, inputs: [{ name: first.name, shape: [entities.length, width], datatype: 'FP32', data }] } }
}
