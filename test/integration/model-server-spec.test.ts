/**
 * The model server against the Open Inference Protocol's text, on the corners the main test
 * (model-server.test.ts) leaves: BYTES tensors, a model with an output that is not a tensor (as
 * scikit-learn exports put a ZipMap after the probabilities), the optional `parameters` of a request,
 * its inputs and its outputs, readiness of models and versions that are not served, fixed dimensions,
 * and the JSON content type of every answer.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import onnxProto from 'onnx-proto'
import { createServeServer } from '../../engine/serve/serve-server.ts'
import { loadOnnxModel } from '../../engine/serve/onnx-session.ts'
import { bytesModel, sigmoidModel, sigmoidReference } from '../helpers/onnx-models.ts'
import { startTestRegistry } from '../helpers/model-registry.ts'
import { OipClient, output } from '../helpers/oip-client.ts'

const { onnx } = onnxProto
const T = onnx.TensorProto.DataType

function valueInfo(name: string, elem: number, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: elem, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } } })
}

function encode(graph: Record<string, unknown>, opsets = [{ domain: '', version: 13 }]): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, opsetImport: opsets, producerName: 'elsewhere', graph: { name: 'g', initializer: [], ...graph } as never })).finish()
}

/**
 * As scikit-learn's exporter writes a classifier: `probabilities` FP32 [N, 2] (here the input itself),
 * then a ZipMap of them (a sequence of maps, not a tensor) as `output_probability`.
 */
function zipMapModel(): Uint8Array {
  return encode(
    {
      node: [
        onnx.NodeProto.create({ opType: 'Identity', input: ['x'], output: ['probabilities'] }),
        onnx.NodeProto.create({
          opType: 'ZipMap',
          domain: 'ai.onnx.ml',
          input: ['x'],
          output: ['output_probability'],
          attribute: [onnx.AttributeProto.create({ name: 'classlabels_int64s', type: onnx.AttributeProto.AttributeType.INTS, ints: [0, 1] })],
        }),
      ],
      input: [valueInfo('x', T.FLOAT, ['N', 2])],
      output: [
        onnx.ValueInfoProto.create({ name: 'output_probability', type: { sequenceType: { elemType: { mapType: { keyType: T.INT64, valueType: { tensorType: { elemType: T.FLOAT } } } } } } }),
        valueInfo('probabilities', T.FLOAT, ['N', 2]),
      ],
    },
    [{ domain: '', version: 13 }, { domain: 'ai.onnx.ml', version: 1 }],
  )
}

/** A fixed batch of one: `x` FP32 [1, 3] -> `y` FP32 [1, 3] (Identity). */
function fixedModel(): Uint8Array {
  return encode({ node: [onnx.NodeProto.create({ opType: 'Identity', input: ['x'], output: ['y'] })], input: [valueInfo('x', T.FLOAT, [1, 3])], output: [valueInfo('y', T.FLOAT, [1, 3])] })
}

async function start(t: test.TestContext) {
  const { db, log, dir, token, register } = await startTestRegistry(t, 'cairn-serve-spec-')
  return {
    register,
    async serve() {
      const server = await createServeServer({ db, log, dataDir: dir, flushMs: 50 })
      t.after(() => server.close())
      await server.app.listen({ port: 0, host: '127.0.0.1' })
      const { port } = server.app.server.address() as { port: number }
      return new OipClient(`http://127.0.0.1:${port}`, token)
    },
  }
}

test('BYTES tensors go in and come out as JSON strings', async (t) => {
  const s = await start(t)
  await s.register('echo', bytesModel(), 'production')
  const client = await s.serve()
  const meta = await client.get('/v2/models/echo')
  assert.deepEqual([meta.body.inputs, meta.body.outputs], [[{ name: 'text', datatype: 'BYTES', shape: [-1] }], [{ name: 'same', datatype: 'BYTES', shape: [-1] }]])
  const answer = await client.infer('echo', { inputs: [{ name: 'text', shape: [3], datatype: 'BYTES', data: ['hello', 'wörld', ''] }] })
  assert.equal(answer.status, 200, JSON.stringify(answer.body))
  assert.deepEqual(output(answer, 'same'), { name: 'same', shape: [3], datatype: 'BYTES', data: ['hello', 'wörld', ''] })
  const wrong = await client.infer('echo', { inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', data: [5] }] })
  assert.equal(wrong.status, 400)
  assert.match(wrong.body.error as string, /data\[0\] = 5 is not a string/)
})

test('a model with an output that is not a tensor (a ZipMap) is served with its tensor outputs', async (t) => {
  const s = await start(t)
  await s.register('sk', zipMapModel(), 'production')
  const client = await s.serve()
  const meta = await client.get('/v2/models/sk')
  assert.equal(meta.status, 200, JSON.stringify(meta.body))
  assert.deepEqual([meta.body.inputs, meta.body.outputs], [[{ name: 'x', datatype: 'FP32', shape: [-1, 2] }], [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 2] }]])
  const answer = await client.infer('sk', { inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: [0.25, 0.75, 0.5, 0.5] }] })
  assert.equal(answer.status, 200, JSON.stringify(answer.body))
  assert.deepEqual(output(answer, 'probabilities'), { name: 'probabilities', shape: [2, 2], datatype: 'FP32', data: [0.25, 0.75, 0.5, 0.5] })
  assert.deepEqual((answer.body.outputs as unknown[]).length, 1)
  const asked = await client.postRaw('/v2/models/sk/infer', JSON.stringify({ inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [0.1, 0.9] }], outputs: [{ name: 'output_probability' }] }))
  assert.equal(asked.status, 400)
  assert.match(asked.body.error as string, /no output "output_probability"/)
})

test('on a model thread too, only the tensor outputs are computed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-serve-spec-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'sk.onnx')
  writeFileSync(file, zipMapModel())
  const model = await loadOnnxModel(file, { threads: 1, inlineBelowMs: 0 })
  t.after(() => model.release())
  const deadline = Date.now() + 20_000
  for (;;) {
    const data = Float32Array.from([0.25, 0.75])
    const out = await model.run([{ name: 'x', datatype: 'FP32', shape: [1, 2], data }], { overlap: true })
    assert.deepEqual(out.map((o) => [o.name, o.shape, Array.from(o.data as Float32Array)]), [['probabilities', [1, 2], [0.25, 0.75]]])
    // A transferred input is left detached: that run was on the thread.
    if (data.length === 0) break
    assert.ok(Date.now() < deadline, 'no run went to the model thread')
    await new Promise((r) => setTimeout(r, 20))
  }
})

test('optional parameters of the request, its inputs and its outputs are accepted', async (t) => {
  const s = await start(t)
  await s.register('churn', sigmoidModel([0.5, -1, 2], 0.1), 'production')
  const client = await s.serve()
  const x = [1, 2, 3]
  const answer = await client.postRaw(
    '/v2/models/churn/infer',
    JSON.stringify({
      id: 'p1',
      parameters: { content_type: 'np', headers: {} },
      inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', parameters: { content_type: 'np' }, data: x }],
      outputs: [{ name: 'y', parameters: { binary_data: false } }],
    }),
  )
  assert.equal(answer.status, 200, JSON.stringify(answer.body))
  assert.equal(answer.body.id, 'p1')
  assert.equal(answer.headers.get('content-type')?.split(';')[0], 'application/json')
  assert.ok(Math.abs((output(answer, 'y').data[0] as number) - sigmoidReference(x, [0.5, -1, 2], 0.1)[0]!) < 1e-6)
})

test('the body is read as JSON whatever its declared content type (fetch with a string body says text/plain)', async (t) => {
  const s = await start(t)
  await s.register('churn', sigmoidModel([0.5, -1, 2], 0.1), 'production')
  const client = await s.serve()
  const body = JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] })
  const expected = sigmoidReference([1, 2, 3], [0.5, -1, 2], 0.1)[0]!
  for (const headers of [{}, { 'content-type': 'text/plain;charset=UTF-8' }, { 'content-type': 'application/x-www-form-urlencoded' }]) {
    const res = await fetch(`${client.base}/v2/models/churn/infer`, { method: 'POST', headers: { authorization: `Bearer ${client.token}`, ...headers }, body })
    const answer = (await res.json()) as { outputs: { data: number[] }[] }
    assert.equal(res.status, 200, `${JSON.stringify(headers)}: ${JSON.stringify(answer)}`)
    assert.ok(Math.abs(answer.outputs[0]!.data[0]! - expected) < 1e-6)
  }
  const broken = await client.postRaw('/v2/models/churn/infer', '{"inputs": [', { 'content-type': 'text/plain' })
  assert.deepEqual([broken.status, broken.body], [400, { error: 'the request body is not valid JSON' }])
})

test('readiness and metadata of models and versions that are not served; fixed dimensions', async (t) => {
  const s = await start(t)
  await s.register('fixed', fixedModel(), 'production')
  await s.register('waiting', sigmoidModel([1, 1, 1], 0))
  const client = await s.serve()
  const json = (a: { headers: Headers }) => a.headers.get('content-type')?.split(';')[0]
  for (const path of ['/v2/health/live', '/v2/health/ready', '/v2', '/v2/models/fixed', '/v2/models/fixed/ready', '/v2/models/fixed/versions/1', '/v2/models/fixed/versions/1/ready']) {
    const a = await client.get(path)
    assert.equal(a.status, 200, `${path}: ${JSON.stringify(a.body)}`)
    assert.equal(json(a), 'application/json', path)
  }
  assert.deepEqual((await client.get('/v2/models/fixed/ready')).body, { name: 'fixed', ready: true })
  const failures: [string, number][] = [
    ['/v2/models/nope', 404],
    ['/v2/models/nope/ready', 404],
    ['/v2/models/nope/versions/1', 404],
    ['/v2/models/nope/versions/1/ready', 404],
    ['/v2/models/fixed/versions/7', 404],
    ['/v2/models/fixed/versions/7/ready', 404],
    ['/v2/models/waiting', 404],
    ['/v2/models/waiting/ready', 404],
  ]
  for (const [path, status] of failures) {
    const a = await client.get(path)
    assert.equal(a.status, status, `${path}: ${JSON.stringify(a.body)}`)
    assert.equal(typeof a.body.error, 'string', path)
    assert.equal(json(a), 'application/json', path)
  }
  // A version outside the split is ready by number (loaded on demand).
  assert.equal((await client.get('/v2/models/waiting/versions/1/ready')).status, 200)
  const meta = await client.get('/v2/models/fixed')
  assert.deepEqual(meta.body.inputs, [{ name: 'x', datatype: 'FP32', shape: [1, 3] }])
  const two = await client.infer('fixed', { inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }] })
  assert.equal(two.status, 400)
  assert.match(two.body.error as string, /dimension 0 must be 1/)
  const one = await client.infer('fixed', { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [[1, 2, 3]] }] })
  assert.deepEqual(output(one, 'y'), { name: 'y', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] })
})
