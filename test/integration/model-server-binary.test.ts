/**
 * The Binary Tensor Data Extension of the Open Inference Protocol on the model server, against a
 * client written from the extension's text (test/helpers/oip-binary.ts), over HTTP with real ONNX
 * models: binary inputs give what the same request in JSON gives (FP32, FP64, INT32, INT64, BOOL,
 * BYTES), binary and JSON inputs mixed, binary outputs per output and for all, both infer routes,
 * dynamic batching and model threads on, the traffic split's blame, and every malformed body answered
 * with a 400 (or 413) and a clear message while the next good request still works.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { createServeServer } from '../../engine/serve/serve-server.ts'
import { bytesModel, sigmoidModel, sigmoidReference, typedModel } from '../helpers/onnx-models.ts'
import { startTestRegistry } from '../helpers/model-registry.ts'
import { OipClient, output } from '../helpers/oip-client.ts'
import { binaryBody, encodeTensor, postBinary } from '../helpers/oip-binary.ts'
import type { BinaryAnswer } from '../helpers/oip-binary.ts'

const W = [0.5, -1, 2]
const B = 0.1
const ACTOR = { user: 'test' }
const BODY_LIMIT = 256 * 1024
/** Rows of 3 FP32 that make a body over the limit. */
const OVER = Math.ceil(BODY_LIMIT / 12) + 1

async function start(t: test.TestContext) {
  const { db, log, dir, models, token, register } = await startTestRegistry(t, 'cairn-serve-binary-')
  const churn = await register('churn', sigmoidModel(W, B), 'production')
  await register('typed', typedModel(), 'production')
  await register('echo', bytesModel(), 'production')
  // Batching on, and every run worth a model thread while others are in progress.
  const server = await createServeServer({ db, log, dataDir: dir, flushMs: 50, bodyLimit: BODY_LIMIT, threads: 1, inlineBelowMs: 0, batching: { maxBatch: 16 } })
  t.after(() => server.close())
  await server.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = server.app.server.address() as { port: number }
  const base = `http://127.0.0.1:${port}`
  const post = (path: string, request: unknown, parts: Uint8Array[], headers: Record<string, string> = {}): Promise<BinaryAnswer> => {
    const { body, jsonLength } = binaryBody(request, parts)
    return postBinary(`${base}${path}`, token, body, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(jsonLength), ...headers })
  }
  return { models, register, churn, token, base, client: new OipClient(base, token), post }
}

const typedInputs = [
  { name: 'ids', shape: [2, 2], datatype: 'INT64', data: [1, 2, 9007199254740990, -5] },
  { name: 'values', shape: [2, 3], datatype: 'FP64', data: [0.1, 0.2, 0.3, 1e300, -2.5, 0] },
  { name: 'flags', shape: [2], datatype: 'BOOL', data: [true, false] },
  { name: 'counts', shape: [2], datatype: 'INT32', data: [2147483647, -2147483648] },
]

/** The request with the named inputs sent as binary data (in the order they appear). */
function asBinary(inputs: typeof typedInputs, binary: readonly string[]): { inputs: unknown[]; parts: Uint8Array[] } {
  const parts: Uint8Array[] = []
  const out = inputs.map((i) => {
    if (!binary.includes(i.name)) return i
    const bytes = encodeTensor(i.datatype, i.data as number[])
    parts.push(bytes)
    return { name: i.name, shape: i.shape, datatype: i.datatype, parameters: { binary_data_size: bytes.length } }
  })
  return { inputs: out, parts }
}

const jsonOutputs = (a: BinaryAnswer) => Object.fromEntries([...a.outputs].map(([name, o]) => [name, { shape: o.shape, datatype: o.datatype, values: o.values }]))

test('binary inputs give the outputs of the same request in JSON; mixed inputs; binary outputs per output and for all', async (t) => {
  const s = await start(t)
  const meta = await s.client.get('/v2')
  assert.deepEqual(meta.body.extensions, ['binary_tensor_data'])

  // INT64, FP64, BOOL, INT32: all binary, then mixed, against JSON.
  const json = await postBinary(`${s.base}/v2/models/typed/infer`, s.token, JSON.stringify({ inputs: typedInputs }), { 'content-type': 'application/json' })
  assert.equal(json.status, 200, JSON.stringify(json.body))
  assert.equal(json.headers.get('inference-header-content-length'), null)
  const all = asBinary(typedInputs, ['ids', 'values', 'flags', 'counts'])
  const binary = await s.post('/v2/models/typed/infer', { inputs: all.inputs }, all.parts)
  assert.equal(binary.status, 200, JSON.stringify(binary.body))
  assert.deepEqual(jsonOutputs(binary), jsonOutputs(json))
  // JSON answers to binary requests stay plain JSON.
  assert.match(binary.headers.get('content-type')!, /^application\/json/)
  assert.equal(binary.headers.get('inference-header-content-length'), null)
  // Binary inputs between JSON ones, in a different order from the model's.
  const reordered = [typedInputs[1]!, typedInputs[2]!, typedInputs[3]!, typedInputs[0]!]
  const mixed = asBinary(reordered, ['flags', 'ids'])
  const mixedAnswer = await s.post('/v2/models/typed/versions/1/infer', { id: 'm1', inputs: mixed.inputs }, mixed.parts)
  assert.equal(mixedAnswer.status, 200, JSON.stringify(mixedAnswer.body))
  assert.equal(mixedAnswer.body.id, 'm1')
  assert.deepEqual(jsonOutputs(mixedAnswer), jsonOutputs(json))
  // A binary request's JSON part alone (header = whole body, no binary inputs) is a JSON request.
  const noBinary = await s.post('/v2/models/typed/infer', { inputs: typedInputs }, [])
  assert.deepEqual(jsonOutputs(noBinary), jsonOutputs(json))

  // Binary outputs asked per output: doubled in binary, negated in JSON (binary_data false), the
  // others not asked for.
  const some = await s.post('/v2/models/typed/infer', { inputs: all.inputs, outputs: [{ name: 'doubled', parameters: { binary_data: true } }, { name: 'negated', parameters: { binary_data: false } }] }, all.parts)
  assert.equal(some.status, 200, JSON.stringify(some.body))
  assert.equal(some.headers.get('content-type'), 'application/octet-stream')
  assert.equal(some.headers.get('x-cairn-model-version'), '1')
  const outs = some.body.outputs as Record<string, unknown>[]
  assert.deepEqual(outs, [
    { name: 'doubled', shape: [2, 3], datatype: 'FP64', parameters: { binary_data_size: 48 } },
    { name: 'negated', shape: [2], datatype: 'BOOL', data: [false, true] },
  ])
  assert.deepEqual(some.outputs.get('doubled')!.values, [0.2, 0.4, 0.6, 2e300, -5, 0])
  // All outputs binary (binary_data_output), from a plain JSON request; INT64 beyond 2^53 exact.
  const big = { inputs: typedInputs.map((i) => (i.name === 'ids' ? { ...i, data: [1, 2, 3, 4] } : i)), parameters: { binary_data_output: true } }
  const allOut = await postBinary(`${s.base}/v2/models/typed/infer`, s.token, JSON.stringify(big), { 'content-type': 'application/json' })
  assert.equal(allOut.status, 200, JSON.stringify(allOut.body))
  assert.deepEqual([...allOut.outputs.values()].map((o) => o.binary), [true, true, true, true])
  assert.deepEqual(allOut.outputs.get('ids_plus')!.values, [2n, 3n, 4n, 5n])
  assert.deepEqual(allOut.outputs.get('negated')!.values, [false, true])
  assert.deepEqual(allOut.outputs.get('counts_out')!.values, [2147483647, -2147483648])
  const hugeIds = asBinary([{ name: 'ids', shape: [1, 2], datatype: 'INT64', data: [2n ** 60n, -(2n ** 62n)] as never }, { ...typedInputs[1]!, shape: [1, 3], data: [1, 2, 3] }, { ...typedInputs[2]!, shape: [1], data: [true] }, { ...typedInputs[3]!, shape: [1], data: [7] }], ['ids'])
  const huge = await s.post('/v2/models/typed/infer', { inputs: hugeIds.inputs, parameters: { binary_data_output: true }, outputs: [{ name: 'ids_plus' }, { name: 'counts_out', parameters: { binary_data: false } }] }, hugeIds.parts)
  assert.equal(huge.status, 200, JSON.stringify(huge.body))
  assert.deepEqual(huge.outputs.get('ids_plus'), { shape: [1, 2], datatype: 'INT64', binary: true, values: [2n ** 60n + 1n, -(2n ** 62n) + 1n] })
  assert.deepEqual(huge.outputs.get('counts_out'), { shape: [1], datatype: 'INT32', binary: false, values: [7] })

  // FP32 on both routes, 64 rows.
  const x = Array.from({ length: 64 * 3 }, (_, i) => Math.sin(i) * 3)
  for (const path of ['/v2/models/churn/infer', `/v2/models/churn/versions/${s.churn}/infer`]) {
    const bytes = encodeTensor('FP32', x)
    const a = await s.post(path, { inputs: [{ name: 'x', shape: [64, 3], datatype: 'FP32', parameters: { binary_data_size: bytes.length } }], outputs: [{ name: 'y', parameters: { binary_data: true } }] }, [bytes])
    assert.equal(a.status, 200, JSON.stringify(a.body))
    const j = await s.client.infer('churn', { inputs: [{ name: 'x', shape: [64, 3], datatype: 'FP32', data: x }] })
    assert.deepEqual(a.outputs.get('y')!.values, output(j, 'y').data)
    const reference = sigmoidReference(Array.from(Float32Array.from(x)), W, B)
    assert.ok((a.outputs.get('y')!.values as number[]).every((v, i) => Math.abs(v - reference[i]!) < 1e-6))
  }

  // BYTES in and out, with an empty and a multi-byte element.
  const texts = ['hello', 'wörld', '', 'tab\there']
  const textBytes = encodeTensor('BYTES', texts)
  const echo = await s.post('/v2/models/echo/infer', { inputs: [{ name: 'text', shape: [4], datatype: 'BYTES', parameters: { binary_data_size: textBytes.length } }], parameters: { binary_data_output: true } }, [textBytes])
  assert.equal(echo.status, 200, JSON.stringify(echo.body))
  assert.deepEqual(echo.outputs.get('same'), { shape: [4], datatype: 'BYTES', binary: true, values: texts })
  assert.deepEqual((echo.body.outputs as { parameters: unknown }[])[0]!.parameters, { binary_data_size: textBytes.length })
  const echoJson = await s.post('/v2/models/echo/infer', { inputs: [{ name: 'text', shape: [4], datatype: 'BYTES', parameters: { binary_data_size: textBytes.length } }] }, [textBytes])
  assert.deepEqual(echoJson.outputs.get('same')!.values, texts)

  // Without a Content-Type (as Triton's client sends), the header alone says binary.
  const bare = binaryBody({ inputs: all.inputs }, all.parts)
  const noType = await fetch(`${s.base}/v2/models/typed/infer`, { method: 'POST', headers: { authorization: `Bearer ${s.token}`, 'inference-header-content-length': String(bare.jsonLength) }, body: new Blob([bare.body]) })
  assert.equal(noType.status, 200, await noType.clone().text())
})

test('concurrent binary and JSON requests, batched and on model threads, each get their own rows', async (t) => {
  const s = await start(t)
  const requests = Array.from({ length: 40 }, (_, k) => {
    const rows = 1 + (k % 7)
    const x = Array.from({ length: rows * 3 }, (_, i) => Math.cos(k * 31 + i))
    return { k, rows, x, expected: sigmoidReference(Array.from(Float32Array.from(x)), W, B) }
  })
  for (let round = 0; round < 3; round++) {
    const answers = await Promise.all(
      requests.map(async ({ k, rows, x }) => {
        if (k % 3 === 0) return output(await s.client.infer('churn', { inputs: [{ name: 'x', shape: [rows, 3], datatype: 'FP32', data: x }] }), 'y').data as number[]
        const bytes = encodeTensor('FP32', x)
        const a = await s.post('/v2/models/churn/infer', { inputs: [{ name: 'x', shape: [rows, 3], datatype: 'FP32', parameters: { binary_data_size: bytes.length } }], parameters: { binary_data_output: k % 2 === 0 } }, [bytes])
        assert.equal(a.status, 200, JSON.stringify(a.body))
        return a.outputs.get('y')!.values as number[]
      }),
    )
    for (const { k, expected } of requests) assert.ok(answers[k]!.length === expected.length && answers[k]!.every((v, i) => Math.abs(v - expected[i]!) < 1e-6), `request ${k}: ${answers[k]} vs ${expected}`)
  }
})

test('every malformed binary body gets a 400 (413 over the limit) with a clear message; the next good request works', async (t) => {
  const s = await start(t)
  const x = [1, 2, 3]
  const fp = encodeTensor('FP32', x)
  const input = (over: Record<string, unknown> = {}) => ({ name: 'x', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 }, ...over })
  const raw = (body: Buffer, header: string, type = 'application/octet-stream') => postBinary(`${s.base}/v2/models/churn/infer`, s.token, body, { 'content-type': type, 'inference-header-content-length': header })
  const good = async () => {
    const a = await s.post('/v2/models/churn/infer', { inputs: [input()] }, [fp])
    assert.equal(a.status, 200, JSON.stringify(a.body))
    assert.ok(Math.abs((a.outputs.get('y')!.values[0] as number) - sigmoidReference(x, W, B)[0]!) < 1e-6)
  }
  const jsonPart = Buffer.from(JSON.stringify({ inputs: [input()] }))
  const texts = Buffer.from(encodeTensor('BYTES', ['abc', 'de']))
  const cases: { what: string; send: () => Promise<BinaryAnswer>; status?: number; message: RegExp }[] = [
    { what: 'header not a number', send: () => raw(Buffer.concat([jsonPart, fp]), 'abc'), message: /Inference-Header-Content-Length header must be a whole number/ },
    { what: 'header negative', send: () => raw(Buffer.concat([jsonPart, fp]), '-1'), message: /must be a whole number of bytes >= 0/ },
    { what: 'header fractional', send: () => raw(Buffer.concat([jsonPart, fp]), '12.5'), message: /must be a whole number/ },
    { what: 'header empty', send: () => raw(Buffer.concat([jsonPart, fp]), ''), message: /must be a whole number/ },
    { what: 'header past the body', send: () => raw(Buffer.concat([jsonPart, fp]), String(jsonPart.length + 13)), message: new RegExp(`says the JSON part has ${jsonPart.length + 13} bytes, but the whole body has ${jsonPart.length + 12}`) },
    { what: 'header far past the body', send: () => raw(Buffer.concat([jsonPart, fp]), '999999999999999'), message: /but the whole body has/ },
    { what: 'JSON part cut short', send: () => raw(Buffer.concat([jsonPart, fp]), String(jsonPart.length - 1)), message: /the JSON part of the body \(its first \d+ bytes.*\) is not valid JSON/ },
    { what: 'JSON part empty', send: () => raw(fp, '0'), message: /is not valid JSON/ },
    { what: 'size a string', send: () => s.post('/v2/models/churn/infer', { inputs: [input({ parameters: { binary_data_size: '12' } })] }, [fp]), message: /binary_data_size must be a whole number of bytes >= 0, not "12"/ },
    { what: 'size negative', send: () => s.post('/v2/models/churn/infer', { inputs: [input({ parameters: { binary_data_size: -12 } })] }, [fp]), message: /binary_data_size must be a whole number of bytes >= 0, not -12/ },
    { what: 'size fractional', send: () => s.post('/v2/models/churn/infer', { inputs: [input({ parameters: { binary_data_size: 11.5 } })] }, [fp]), message: /not 11.5/ },
    { what: 'bytes left over', send: () => s.post('/v2/models/churn/infer', { inputs: [input()] }, [fp, Buffer.from([0])]), message: /13 bytes of binary data after its JSON part, but the inputs' binary_data_size add up to 12/ },
    { what: 'size past the end', send: () => s.post('/v2/models/churn/infer', { inputs: [input()] }, [fp.subarray(0, 8)]), message: /binary_data_size 12 runs past the end of the binary data \(8 of its 8 bytes are left/ },
    { what: 'size not shape x element', send: () => s.post('/v2/models/churn/infer', { inputs: [input({ parameters: { binary_data_size: 8 } })] }, [fp.subarray(0, 8)]), message: /input "x": binary_data_size 8 is not 3 elements x 4 bytes = 12/ },
    { what: 'data and binary_data_size', send: () => s.post('/v2/models/churn/infer', { inputs: [input({ data: x })] }, [fp]), message: /input "x": send its data either in "data" or as binary data/ },
    { what: 'binary_data_size without binary data', send: () => s.client.postRaw('/v2/models/churn/infer', JSON.stringify({ inputs: [input()] })) as never, message: /has "parameters".binary_data_size, but the request has no binary data/ },
    { what: 'binary body said to be JSON', send: () => raw(Buffer.concat([jsonPart, fp]), String(jsonPart.length), 'application/json'), message: /has the Inference-Header-Content-Length header .* but says Content-Type: application\/json/ },
    { what: 'BOOL byte not 0 or 1', send: () => s.post('/v2/models/typed/infer', asBinaryFlags(Buffer.from([1, 2])), [Buffer.from([1, 2])]), message: /input "flags": binary element 1 of a BOOL tensor is 2; it must be 0 or 1/ },
    { what: 'BYTES length past the end', send: () => s.post('/v2/models/echo/infer', { inputs: [{ name: 'text', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: texts.length - 1 } }] }, [texts.subarray(0, texts.length - 1)]), message: /input "text": binary element 1 says it has 2 bytes, but only 1 are left/ },
    { what: 'BYTES length cut', send: () => s.post('/v2/models/echo/infer', { inputs: [{ name: 'text', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: 9 } }] }, [texts.subarray(0, 9)]), message: /binary data ends inside the length of element 1/ },
    { what: 'BYTES huge length', send: () => s.post('/v2/models/echo/infer', { inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 5 } }] }, [Buffer.from([0xff, 0xff, 0xff, 0xff, 0x41])]), message: /says it has 4294967295 bytes, but only 1 are left/ },
    { what: 'BYTES more than the shape', send: () => s.post('/v2/models/echo/infer', { inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: texts.length } }] }, [texts]), message: /has 6 bytes left after its 1 elements/ },
    { what: 'BYTES not UTF-8', send: () => s.post('/v2/models/echo/infer', { inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 6 } }] }, [Buffer.from([2, 0, 0, 0, 0xc3, 0x28])]), message: /binary element 0 is not UTF-8 text/ },
    { what: 'binary_data_output not a boolean', send: () => s.post('/v2/models/churn/infer', { inputs: [input()], parameters: { binary_data_output: 'yes' } }, [fp]), message: /binary_data_output must be true or false, not "yes"/ },
    { what: 'binary_data not a boolean', send: () => s.post('/v2/models/churn/infer', { inputs: [input()], outputs: [{ name: 'y', parameters: { binary_data: 1 } }] }, [fp]), message: /output "y": "parameters".binary_data must be true or false, not 1/ },
    { what: 'body over the limit', send: () => s.post('/v2/models/churn/infer', { inputs: [input({ shape: [OVER, 3], parameters: { binary_data_size: OVER * 12 } })] }, [Buffer.alloc(OVER * 12)]), status: 413, message: /larger than this server's limit of 262144 bytes/ },
  ]
  await good()
  for (const c of cases) {
    const a = await c.send()
    assert.equal(a.status, c.status ?? 400, `${c.what}: ${a.status} ${JSON.stringify(a.body)}`)
    assert.match(String(a.body.error), c.message, c.what)
    await good()
  }
})

function asBinaryFlags(flags: Buffer) {
  return {
    inputs: [
      { name: 'ids', shape: [2, 2], datatype: 'INT64', data: [1, 2, 3, 4] },
      { name: 'values', shape: [2, 3], datatype: 'FP64', data: [1, 2, 3, 4, 5, 6] },
      { name: 'flags', shape: [2], datatype: 'BOOL', parameters: { binary_data_size: flags.length } },
      { name: 'counts', shape: [2], datatype: 'INT32', data: [1, 2] },
    ],
  }
}

test('the traffic split: a canary that cannot take a binary request production takes fails as the version\'s error (500)', async (t) => {
  const s = await start(t)
  // 4 features: production's binary requests do not fit it.
  const v2 = await s.register('churn', sigmoidModel([1, 1, 1, 1], 0))
  await s.models.setStage('churn', v2, 'canary', ACTOR, 1)
  await waitFor(async () => ((await s.client.get('/v2/models/churn')).body.versions as string[]).includes(String(v2)))
  const bytes = encodeTensor('FP32', [1, 2, 3])
  const request = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } }] }
  const a = await s.post('/v2/models/churn/infer', request, [bytes])
  assert.equal(a.status, 500, JSON.stringify(a.body))
  assert.match(String(a.body.error), new RegExp(`version ${v2} of model churn cannot take this request, which production version ${s.churn} takes`))
  // Production, called by number, takes it.
  const b = await s.post(`/v2/models/churn/versions/${s.churn}/infer`, request, [bytes])
  assert.equal(b.status, 200, JSON.stringify(b.body))
  // A request production refuses too is the client's (400).
  const c = await s.post('/v2/models/churn/infer', { inputs: [{ ...request.inputs[0]!, parameters: { binary_data_size: 8 } }] }, [bytes.subarray(0, 8)])
  assert.equal(c.status, 400, JSON.stringify(c.body))
})

async function waitFor(fn: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 20))
  }
}
