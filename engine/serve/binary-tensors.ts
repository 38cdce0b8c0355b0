/**
 * The Open Inference Protocol's Binary Tensor Data Extension (as KServe and Triton define it), apart
 * from transport: the body of a request or response is a JSON object followed by the raw bytes of
 * some tensors, and the header `Inference-Header-Content-Length` gives the JSON part's length.
 *
 *   request   input  {"name", "shape", "datatype", "parameters": {"binary_data_size": B}}  (no "data":
 *             its B bytes follow the JSON, in the order of the inputs that have them)
 *             output {"name", "parameters": {"binary_data": true}}, or the request's
 *             "parameters": {"binary_data_output": true} for every output
 *   response  output {"name", "shape", "datatype", "parameters": {"binary_data_size": B}} (no "data")
 *
 * Binary data is little-endian, row-major, without padding; BOOL is one byte (0 or 1); a BYTES
 * element is a 4-byte little-endian length and that many bytes (UTF-8 here: ONNX Runtime's string
 * tensors hold text). Every length the client sends is checked against the bytes it sent: nothing is
 * read past the body, and the typed arrays made are fresh (aligned, and each its own buffer, so a
 * model thread can take it over).
 */
import type { Datatype, OutputTensor, Parsed, TensorData } from './protocol.ts'

/** The request and response header (lower case, as Node gives headers). */
export const INFERENCE_HEADER = 'inference-header-content-length'

/** A request body of the extension: its JSON part parsed, and the bytes after it. */
export class BinaryBody {
  readonly json: unknown
  readonly binary: Uint8Array
  constructor(json: unknown, binary: Uint8Array) {
    this.json = json
    this.binary = binary
  }
}

const WHOLE = /^[0-9]{1,15}$/

/** Splits a body by its Inference-Header-Content-Length header; the error is the client's (400). */
export function splitBinaryBody(body: Buffer, header: string): Parsed<BinaryBody> {
  if (!WHOLE.test(header)) return { ok: false, error: `the Inference-Header-Content-Length header must be a whole number of bytes >= 0 (the length of the JSON part of the body); got ${JSON.stringify(header.slice(0, 40))}` }
  const length = Number(header)
  if (length > body.length) return { ok: false, error: `the Inference-Header-Content-Length header says the JSON part has ${length} bytes, but the whole body has ${body.length}` }
  let json: unknown
  try {
    json = JSON.parse(body.toString('utf8', 0, length))
  } catch (error) {
    return { ok: false, error: `the JSON part of the body (its first ${length} bytes, as Inference-Header-Content-Length says) is not valid JSON: ${(error as Error).message}` }
  }
  return { ok: true, value: new BinaryBody(json, body.subarray(length)) }
}

const ELEMENT_BYTES: Readonly<Record<Exclude<Datatype, 'BYTES'>, number>> = { BOOL: 1, INT8: 1, UINT8: 1, INT16: 2, UINT16: 2, INT32: 4, UINT32: 4, FP32: 4, INT64: 8, FP64: 8 }

const CTOR = {
  BOOL: Uint8Array,
  INT8: Int8Array,
  UINT8: Uint8Array,
  INT16: Int16Array,
  UINT16: Uint16Array,
  INT32: Int32Array,
  UINT32: Uint32Array,
  FP32: Float32Array,
  INT64: BigInt64Array,
  FP64: Float64Array,
} as const

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** Reverses the bytes of each `size`-byte element (only on a big-endian machine). */
function swapBytes(bytes: Uint8Array, size: number): void {
  if (LITTLE_ENDIAN || size === 1) return
  for (let at = 0; at + size <= bytes.length; at += size) bytes.subarray(at, at + size).reverse()
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The `count` elements of a tensor of `datatype` from exactly the bytes `bytes`; a string error
 * (without the tensor's name) when the bytes do not hold exactly that.
 */
export function readBinaryTensor(datatype: Datatype, count: number, bytes: Uint8Array): TensorData | string {
  if (datatype === 'BYTES') {
    const out: string[] = new Array(count)
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    let at = 0
    for (let i = 0; i < count; i++) {
      if (at + 4 > bytes.length) return `binary data ends inside the length of element ${i} (${bytes.length} bytes for ${count} elements)`
      const length = view.getUint32(at, true)
      at += 4
      if (length > bytes.length - at) return `binary element ${i} says it has ${length} bytes, but only ${bytes.length - at} are left of the ${bytes.length} bytes of binary data`
      try {
        out[i] = utf8.decode(bytes.subarray(at, at + length))
      } catch {
        return `binary element ${i} is not UTF-8 text`
      }
      at += length
    }
    if (at !== bytes.length) return `binary data has ${bytes.length - at} bytes left after its ${count} elements (binary_data_size must be exactly their size)`
    return out
  }
  const size = ELEMENT_BYTES[datatype]
  if (bytes.length !== count * size) return `binary_data_size ${bytes.length} is not ${count} elements x ${size} bytes = ${count * size}`
  const out = new CTOR[datatype](count)
  const raw = new Uint8Array(out.buffer)
  raw.set(bytes)
  swapBytes(raw, size)
  if (datatype === 'BOOL') {
    for (let i = 0; i < count; i++) if (raw[i]! > 1) return `binary element ${i} of a BOOL tensor is ${raw[i]}; it must be 0 or 1`
  }
  return out
}

const encoder = new TextEncoder()

/** The binary data of an output tensor (little-endian; BYTES as length-prefixed UTF-8). */
export function tensorBytes(tensor: OutputTensor): Uint8Array {
  const { data } = tensor
  if (Array.isArray(data)) {
    const parts = data.map((s) => encoder.encode(String(s)))
    const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0))
    const view = new DataView(out.buffer)
    let at = 0
    for (const p of parts) {
      view.setUint32(at, p.length, true)
      out.set(p, at + 4)
      at += 4 + p.length
    }
    return out
  }
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  if (LITTLE_ENDIAN || data.BYTES_PER_ELEMENT === 1) return bytes
  const copy = bytes.slice()
  swapBytes(copy, data.BYTES_PER_ELEMENT)
  return copy
}
