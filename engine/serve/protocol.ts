/**
 * The Open Inference Protocol (KServe v2, REST) wire shapes, apart from models and transport
 * (KServe keeps them in protocol/rest/v2_endpoints.py apart from its DataPlane): reading an inference
 * request against a model version's tensor metadata, and writing the response.
 *
 *   request   {"id"?, "parameters"?, "inputs": [{"name", "shape", "datatype", "parameters"?, "data"}], "outputs"?: [{"name"}]}
 *   response  {"model_name", "model_version", "id"?, "outputs": [{"name", "shape", "datatype", "data"}]}
 *   error     {"error": "message"} with a 4xx (the client's mistake) or 5xx status
 *
 * `data` is row-major, flat or nested as the shape; every element has the JSON type of its datatype
 * (numbers, booleans for BOOL, strings for BYTES). With the Binary Tensor Data Extension
 * (binary-tensors.ts) an input's data may instead be bytes after the JSON, and outputs may be
 * answered that way. Nothing here loads ONNX Runtime.
 */
import { readBinaryTensor, tensorBytes } from './binary-tensors.ts'


/** The datatypes served (the protocol's names). */
export const DATATYPES = ['BOOL', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'FP32', 'FP64', 'BYTES'] as const
export type Datatype = (typeof DATATYPES)[number]

export function isDatatype(value: unknown): value is Datatype {
  return typeof value === 'string' && (DATATYPES as readonly string[]).includes(value)
}

/** A model's input or output as its metadata shows it: `-1` for a dimension of any size. */
export interface TensorSpec {
  name: string
  datatype: Datatype
  shape: number[]
}

export type TensorData = Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array | Uint32Array | string[]

/** A request input, checked and converted to the typed array its datatype needs. */
export interface InputTensor {
  name: string
  datatype: Datatype
  shape: number[]
  data: TensorData
}

export interface OutputTensor {
  name: string
  datatype: Datatype
  shape: number[]
  data: TensorData
}

export interface InferRequest {
  id?: string
  inputs: InputTensor[]
  /** The outputs asked for (all when absent or empty). */
  outputs?: string[]
  /** The outputs to answer as binary data (the extension's binary_data, binary_data_output). */
  binaryOutputs?: Set<string>
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string }

const fail = (error: string): { ok: false; error: string } => ({ ok: false, error })

/** The most elements one tensor may have (the body limit comes first in practice). */
const MAX_ELEMENTS = 1 << 28

/**
 * Reads an inference request body against the model's inputs and outputs. Every failure is the
 * client's (a 400), with a message naming the tensor and what is wrong. `binary`: the bytes after the
 * JSON part of a body of the Binary Tensor Data Extension (undefined for a plain JSON body).
 */
export function parseInferRequest(body: unknown, inputs: readonly TensorSpec[], outputs: readonly TensorSpec[], binary?: Uint8Array): Parsed<InferRequest> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return fail('the request body must be a JSON object with "inputs"')
  const b = body as Record<string, unknown>
  const allBinary = flag(b.parameters, 'binary_data_output')
  if (typeof allBinary === 'string') return fail(`"parameters".${allBinary}`)
  // Where the next binary input starts (a JSON request allocates nothing for the extension).
  const cursor = binary === undefined ? NO_BINARY : { at: 0 }
  // An optional field sent as null (clients that write every field do) is absent.
  if (b.id !== undefined && b.id !== null && typeof b.id !== 'string') return fail('"id" must be a string')
  if (!Array.isArray(b.inputs) || b.inputs.length === 0) return fail('"inputs" must be a non-empty array of tensors ({"name", "shape", "datatype", "data"})')
  const byName = new Map(inputs.map((s) => [s.name, s]))
  const seen = new Set<string>()
  const parsed: InputTensor[] = []
  for (let k = 0; k < b.inputs.length; k++) {
    const raw = b.inputs[k] as Record<string, unknown> | null
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail(`inputs[${k}] must be an object with "name", "shape", "datatype" and "data"`)
    const name = raw.name
    if (typeof name !== 'string') return fail(`inputs[${k}].name must be a string`)
    const spec = byName.get(name)
    if (!spec) return fail(`the model has no input ${JSON.stringify(name)}; its inputs are ${names(inputs)}`)
    if (seen.has(name)) return fail(`input ${JSON.stringify(name)} is given twice`)
    seen.add(name)
    const one = parseInput(raw, spec, binary, cursor)
    if (!one.ok) return one
    parsed.push(one.value)
  }
  const missing = inputs.filter((s) => !seen.has(s.name))
  if (missing.length > 0) return fail(`input ${names(missing)} is missing; the model needs ${names(inputs)}`)
  if (binary !== undefined && cursor.at !== binary.length) {
    return fail(`the body has ${binary.length} bytes of binary data after its JSON part, but the inputs' binary_data_size add up to ${cursor.at}`)
  }
  const request: InferRequest = { inputs: parsed }
  if (typeof b.id === 'string') request.id = b.id
  let binaryOutputs: Set<string> | undefined
  if (b.outputs !== undefined && b.outputs !== null) {
    if (!Array.isArray(b.outputs)) return fail('"outputs" must be an array of {"name"}')
    const known = new Set(outputs.map((o) => o.name))
    const wanted: string[] = []
    for (const o of b.outputs as unknown[]) {
      const name = typeof o === 'object' && o !== null ? (o as { name?: unknown }).name : undefined
      if (typeof name !== 'string') return fail('each of "outputs" must be an object with a "name"')
      if (!known.has(name)) return fail(`the model has no output ${JSON.stringify(name)}; its outputs are ${names(outputs)}`)
      wanted.push(name)
      // The output's own binary_data wins over the request's binary_data_output, as in Triton.
      const own = flag((o as { parameters?: unknown }).parameters, 'binary_data')
      if (typeof own === 'string') return fail(`output ${JSON.stringify(name)}: "parameters".${own}`)
      if (own ?? allBinary) (binaryOutputs ??= new Set()).add(name)
    }
    // An empty list names no output in particular: all of them, as KServe and Triton read it.
    if (wanted.length > 0) request.outputs = wanted
  }
  if (allBinary === true && request.outputs === undefined) binaryOutputs = new Set(outputs.map((o) => o.name))
  if (binaryOutputs !== undefined) request.binaryOutputs = binaryOutputs
  return { ok: true, value: request }
}

const NO_BINARY: { readonly at: number } = Object.freeze({ at: 0 })

/** A boolean parameter: its value, undefined when absent (or null), or what is wrong with it. */
function flag(parameters: unknown, key: string): boolean | undefined | string {
  if (typeof parameters !== 'object' || parameters === null) return undefined
  const value = (parameters as Record<string, unknown>)[key]
  if (value === undefined || value === null || typeof value === 'boolean') return value ?? undefined
  return `${key} must be true or false, not ${JSON.stringify(value)}`
}

function names(specs: readonly TensorSpec[]): string {
  return specs.map((s) => JSON.stringify(s.name)).join(', ')
}

function parseInput(raw: Record<string, unknown>, spec: TensorSpec, binary: Uint8Array | undefined, cursor: { at: number }): Parsed<InputTensor> {
  const what = `input ${JSON.stringify(spec.name)}`
  const { shape, datatype, data } = raw
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) return fail(`${what}: "shape" must be an array of whole numbers >= 0`)
  if (!isDatatype(datatype)) return fail(`${what}: datatype ${JSON.stringify(datatype)} is not one of ${DATATYPES.join(', ')}`)
  if (datatype !== spec.datatype) return fail(`${what}: datatype ${datatype} does not match the model's ${spec.datatype}`)
  const dims = shape as number[]
  // An input whose rank ONNX Runtime does not know (shape []) takes any shape.
  if (spec.shape.length > 0) {
    if (dims.length !== spec.shape.length) return fail(`${what}: shape [${dims.join(', ')}] has ${dims.length} dimensions; the model's is [${spec.shape.join(', ')}]`)
    for (let i = 0; i < dims.length; i++) {
      if (spec.shape[i] !== -1 && spec.shape[i] !== dims[i]) return fail(`${what}: shape [${dims.join(', ')}] does not match the model's [${spec.shape.join(', ')}] (dimension ${i} must be ${spec.shape[i]})`)
    }
  }
  let count = 1
  for (const d of dims) count *= d
  if (count === 0) return fail(`${what}: shape [${dims.join(', ')}] holds no elements; there is nothing to infer`)
  if (count > MAX_ELEMENTS) return fail(`${what}: shape [${dims.join(', ')}] has more than ${MAX_ELEMENTS} elements`)
  const parameters = raw.parameters
  const size = typeof parameters === 'object' && parameters !== null ? (parameters as Record<string, unknown>).binary_data_size : undefined
  if (size !== undefined && size !== null) {
    if (data !== undefined && data !== null) return fail(`${what}: send its data either in "data" or as binary data ("parameters": {"binary_data_size"}), not both`)
    if (!Number.isSafeInteger(size) || (size as number) < 0) return fail(`${what}: "parameters".binary_data_size must be a whole number of bytes >= 0, not ${JSON.stringify(size)}`)
    if (binary === undefined) return fail(`${what}: it has "parameters".binary_data_size, but the request has no binary data (send the Inference-Header-Content-Length header with the JSON part's length, and the tensors' bytes after the JSON)`)
    const left = binary.length - cursor.at
    if ((size as number) > left) return fail(`${what}: binary_data_size ${size} runs past the end of the binary data (${left} of its ${binary.length} bytes are left after the inputs before it)`)
    const bytes = binary.subarray(cursor.at, cursor.at + (size as number))
    cursor.at += size as number
    const read = readBinaryTensor(datatype, count, bytes)
    if (typeof read === 'string') return fail(`${what}: ${read} (shape [${dims.join(', ')}], ${datatype})`)
    return { ok: true, value: { name: spec.name, datatype, shape: dims, data: read } }
  }
  if (!Array.isArray(data)) return fail(`${what}: "data" must be an array (flat in row-major order, or nested as the shape)`)
  const flat = flatten(data, dims)
  if (!flat) return fail(`${what}: "data" nests arrays unevenly or unlike shape [${dims.join(', ')}] (send it flat, or nested exactly as the shape)`)
  if (flat.length !== count) return fail(`${what}: "data" has ${flat.length} elements; shape [${dims.join(', ')}] needs ${count}`)
  const converted = convert(flat, datatype)
  if (typeof converted === 'number') return fail(`${what}: data[${converted}] = ${JSON.stringify(flat[converted])} is not a ${describeType(datatype)}`)
  return { ok: true, value: { name: spec.name, datatype, shape: dims, data: converted } }
}

/**
 * The elements of `data` in row-major order: a flat array, or arrays nested exactly as the shape
 * (`[[1, 2], [3, 4]]` for [2, 2]); undefined for any other nesting.
 */
function flatten(data: unknown[], dims: readonly number[]): unknown[] | undefined {
  if (data.length === 0 || !Array.isArray(data[0])) {
    for (const x of data) if (Array.isArray(x)) return undefined
    return data
  }
  const out: unknown[] = []
  const walk = (a: unknown[], depth: number): boolean => {
    if (depth >= dims.length || a.length !== dims[depth]) return false
    const leaf = depth === dims.length - 1
    for (const x of a) {
      if (Array.isArray(x) === leaf) return false
      if (leaf) out.push(x)
      else if (!walk(x as unknown[], depth + 1)) return false
    }
    return true
  }
  return walk(data, 0) ? out : undefined
}

const INT_RANGES: Partial<Record<Datatype, [number, number]>> = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
}

function describeType(datatype: Datatype): string {
  if (datatype === 'BOOL') return 'boolean (true or false)'
  if (datatype === 'BYTES') return 'string'
  if (datatype === 'FP32' || datatype === 'FP64') return 'finite number'
  const [lo, hi] = INT_RANGES[datatype]!
  return `whole number from ${lo} to ${hi}`
}

/** The typed array of the elements, or the index of the first element that does not fit. */
function convert(flat: unknown[], datatype: Datatype): TensorData | number {
  const n = flat.length
  switch (datatype) {
    case 'FP32':
    case 'FP64': {
      const out = datatype === 'FP32' ? new Float32Array(n) : new Float64Array(n)
      for (let i = 0; i < n; i++) {
        const x = flat[i]
        if (typeof x !== 'number' || !Number.isFinite(x)) return i
        out[i] = x
      }
      return out
    }
    case 'BOOL': {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) {
        const x = flat[i]
        if (typeof x !== 'boolean') return i
        out[i] = x ? 1 : 0
      }
      return out
    }
    case 'BYTES': {
      for (let i = 0; i < n; i++) if (typeof flat[i] !== 'string') return i
      return flat as string[]
    }
    case 'INT64': {
      const out = new BigInt64Array(n)
      for (let i = 0; i < n; i++) {
        const x = flat[i]
        if (typeof x !== 'number' || !Number.isSafeInteger(x)) return i
        out[i] = BigInt(x)
      }
      return out
    }
    default: {
      const [lo, hi] = INT_RANGES[datatype]!
      const Ctor = { INT8: Int8Array, INT16: Int16Array, INT32: Int32Array, UINT8: Uint8Array, UINT16: Uint16Array, UINT32: Uint32Array }[datatype as 'INT8']
      const out = new Ctor(n)
      for (let i = 0; i < n; i++) {
        const x = flat[i]
        if (typeof x !== 'number' || !Number.isInteger(x) || x < lo || x > hi) return i
        out[i] = x
      }
      return out
    }
  }
}

/** JSON values of an output tensor: numbers (INT64 as numbers, exact up to 2^53), booleans, strings. */
export function jsonData(tensor: OutputTensor): unknown[] {
  const { data } = tensor
  if (Array.isArray(data)) return data
  if (tensor.datatype === 'BOOL') return Array.from(data as Uint8Array, (x) => x !== 0)
  if (data instanceof BigInt64Array) return Array.from(data, Number)
  return Array.from(data as Float32Array)
}

export type ResponseOutput = { name: string; shape: number[]; datatype: Datatype; data: unknown[] } | { name: string; shape: number[]; datatype: Datatype; parameters: { binary_data_size: number } }

export interface InferResponse {
  model_name: string
  model_version: string
  id?: string
  outputs: ResponseOutput[]
}

/**
 * The response, and the binary data of the outputs answered as such, in the order of `outputs` in
 * the response (to follow its JSON; undefined when every output is in JSON).
 */
export function inferAnswer(model: string, version: number, request: InferRequest, outputs: readonly OutputTensor[]): { response: InferResponse; binary?: Uint8Array[] } {
  const wanted = request.outputs
  const chosen = wanted ? wanted.map((n) => outputs.find((o) => o.name === n)!).filter(Boolean) : outputs
  const asBinary = request.binaryOutputs
  let binary: Uint8Array[] | undefined
  const response: InferResponse = {
    model_name: model,
    model_version: String(version),
    outputs: chosen.map((o): ResponseOutput => {
      if (asBinary === undefined || !asBinary.has(o.name)) return { name: o.name, shape: o.shape, datatype: o.datatype, data: jsonData(o) }
      const bytes = tensorBytes(o)
      ;(binary ??= []).push(bytes)
      return { name: o.name, shape: o.shape, datatype: o.datatype, parameters: { binary_data_size: bytes.length } }
    }),
  }
  if (request.id !== undefined) response.id = request.id
  return binary === undefined ? { response } : { response, binary }
}

export interface ModelMetadata {
  name: string
  versions: string[]
  platform: 'onnxruntime'
  inputs: TensorSpec[]
  outputs: TensorSpec[]
}

export function modelMetadata(name: string, versions: readonly number[], inputs: readonly TensorSpec[], outputs: readonly TensorSpec[]): ModelMetadata {
  return { name, versions: versions.map(String), platform: 'onnxruntime', inputs: [...inputs], outputs: [...outputs] }
}

/**
 * Whether a request that `inputs` refused would have been taken by `other` (another version's
 * inputs): then the refusal is that version's fault, not the client's (see serving-stats.ts).
 */
export function acceptedBy(body: unknown, other: { inputs: readonly TensorSpec[]; outputs: readonly TensorSpec[] }, binary?: Uint8Array): boolean {
  return parseInferRequest(body, other.inputs, other.outputs, binary).ok
}
