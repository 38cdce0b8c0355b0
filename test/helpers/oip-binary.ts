/**
 * The Binary Tensor Data Extension of the Open Inference Protocol (KServe, Triton) from the client's
 * side, written from the extension's published text with plain fetch: a body is the JSON request
 * followed by the tensors' bytes (little-endian, row-major; BOOL one byte; BYTES a 4-byte length and
 * the bytes), and Inference-Header-Content-Length gives the JSON part's length. Nothing of cairn's
 * server code is used, so the tests check the wire.
 */

export type Elements = number[] | bigint[] | boolean[] | string[]

/** The bytes of a tensor's elements as the extension lays them out. */
export function encodeTensor(datatype: string, values: Elements): Buffer {
  if (datatype === 'BYTES') {
    const parts = (values as string[]).map((s) => Buffer.from(s, 'utf8'))
    const out = Buffer.alloc(parts.reduce((n, p) => n + 4 + p.length, 0))
    let at = 0
    for (const p of parts) {
      out.writeUInt32LE(p.length, at)
      p.copy(out, at + 4)
      at += 4 + p.length
    }
    return out
  }
  const size = ({ BOOL: 1, INT8: 1, UINT8: 1, INT16: 2, UINT16: 2, INT32: 4, UINT32: 4, FP32: 4, INT64: 8, FP64: 8 } as Record<string, number>)[datatype]!
  const out = Buffer.alloc(values.length * size)
  values.forEach((v, i) => {
    const at = i * size
    if (datatype === 'BOOL') out.writeUInt8(v ? 1 : 0, at)
    else if (datatype === 'INT32') out.writeInt32LE(v as number, at)
    else if (datatype === 'FP32') out.writeFloatLE(v as number, at)
    else if (datatype === 'FP64') out.writeDoubleLE(v as number, at)
    else if (datatype === 'INT64') out.writeBigInt64LE(BigInt(v as number | bigint), at)
    else throw new Error(`encodeTensor: ${datatype} not written by this helper`)
  })
  return out
}

/** Elements of a tensor's bytes. */
export function decodeTensor(datatype: string, bytes: Buffer): Elements {
  const out: unknown[] = []
  if (datatype === 'BYTES') {
    for (let at = 0; at < bytes.length; ) {
      const n = bytes.readUInt32LE(at)
      out.push(bytes.toString('utf8', at + 4, at + 4 + n))
      at += 4 + n
    }
    return out as string[]
  }
  const read: Record<string, [number, (at: number) => unknown]> = {
    BOOL: [1, (at) => bytes.readUInt8(at) === 1],
    INT32: [4, (at) => bytes.readInt32LE(at)],
    FP32: [4, (at) => bytes.readFloatLE(at)],
    FP64: [8, (at) => bytes.readDoubleLE(at)],
    INT64: [8, (at) => bytes.readBigInt64LE(at)],
  }
  const [size, fn] = read[datatype]!
  for (let at = 0; at < bytes.length; at += size) out.push(fn(at))
  return out as Elements
}

/** A body of the extension: the JSON request, then `parts` in order. */
export function binaryBody(request: unknown, parts: Uint8Array[]): { body: Buffer; jsonLength: number } {
  const json = Buffer.from(JSON.stringify(request))
  return { body: Buffer.concat([json, ...parts]), jsonLength: json.length }
}

export interface BinaryAnswer {
  status: number
  headers: Headers
  /** The JSON part (the whole body when the answer has no binary data). */
  body: Record<string, unknown>
  /** Binary outputs by name, decoded by their datatype; JSON outputs by name, their `data`. */
  outputs: Map<string, { shape: number[]; datatype: string; binary: boolean; values: Elements }>
}

/** Posts a body; reads the answer's JSON part and binary outputs (by Inference-Header-Content-Length). */
export async function postBinary(url: string, token: string | undefined, body: Buffer | string, headers: Record<string, string>): Promise<BinaryAnswer> {
  const res = await fetch(url, { method: 'POST', headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers }, body })
  const raw = Buffer.from(await res.arrayBuffer())
  const header = res.headers.get('inference-header-content-length')
  const jsonLength = header === null ? raw.length : Number(header)
  const text = raw.toString('utf8', 0, jsonLength)
  let json: Record<string, unknown>
  try {
    json = JSON.parse(text) as Record<string, unknown>
  } catch {
    json = { text }
  }
  const outputs: BinaryAnswer['outputs'] = new Map()
  let at = jsonLength
  for (const o of (json.outputs as { name: string; shape: number[]; datatype: string; data?: Elements; parameters?: { binary_data_size?: number } }[] | undefined) ?? []) {
    const size = o.parameters?.binary_data_size
    if (size === undefined) {
      outputs.set(o.name, { shape: o.shape, datatype: o.datatype, binary: false, values: o.data! })
      continue
    }
    outputs.set(o.name, { shape: o.shape, datatype: o.datatype, binary: true, values: decodeTensor(o.datatype, raw.subarray(at, at + size)) })
    at += size
  }
  if (at !== raw.length) throw new Error(`the answer has ${raw.length - at} bytes after its outputs' binary data`)
  return { status: res.status, headers: res.headers, body: json, outputs }
}
