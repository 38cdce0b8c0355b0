/** Reading Open Inference Protocol requests against a model's tensors, and writing answers. */
import test from 'node:test'
import assert from 'node:assert/strict'
import { inferAnswer, parseInferRequest } from '../../engine/serve/protocol.ts'
import type { TensorSpec } from '../../engine/serve/protocol.ts'

const X: TensorSpec[] = [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }]
const Y: TensorSpec[] = [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }, { name: 'z', datatype: 'INT64', shape: [-1] }]
const one = (input: Record<string, unknown>) => parseInferRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 2], data: [1, 2, 3, 4], ...input }] }, X, Y)
const error = (r: ReturnType<typeof one>) => (r.ok ? 'ok' : r.error)

test('flat and nested data give the same tensor; uneven nesting is refused', () => {
  const flat = one({})
  const nested = one({ data: [[1, 2], [3, 4]] })
  assert.ok(flat.ok && nested.ok)
  assert.deepEqual(Array.from(flat.value.inputs[0]!.data as Float32Array), [1, 2, 3, 4])
  assert.deepEqual(Array.from(nested.value.inputs[0]!.data as Float32Array), [1, 2, 3, 4])
  assert.match(error(one({ data: [[1, 2], 3, 4] })), /nests arrays unevenly/)
  assert.match(error(one({ data: [1, 2, 3] })), /has 3 elements; shape \[2, 2\] needs 4/)
  assert.match(error(one({ data: [1, 2, 3, Number.NaN] })), /data\[3\] = null is not a finite number/)
  assert.match(error(one({ shape: [2, -1] })), /"shape" must be an array of whole numbers >= 0/)
  assert.match(error(one({ shape: [2, 1.5] })), /"shape" must be an array of whole numbers >= 0/)
})

test('integers are checked against their datatype; BOOL takes only booleans', () => {
  const spec = (datatype: TensorSpec['datatype']): TensorSpec[] => [{ name: 'v', datatype, shape: [-1] }]
  const parse = (datatype: TensorSpec['datatype'], data: unknown[]) => parseInferRequest({ inputs: [{ name: 'v', datatype, shape: [data.length], data }] }, spec(datatype), [])
  assert.ok(parse('INT32', [2147483647, -2147483648]).ok)
  assert.match(error(parse('INT32', [2147483648])), /whole number from -2147483648 to 2147483647/)
  assert.match(error(parse('UINT8', [-1])), /whole number from 0 to 255/)
  assert.match(error(parse('INT64', [1.5])), /data\[0\] = 1.5/)
  assert.match(error(parse('INT64', [2 ** 60])), /data\[0\]/)
  const big = parse('INT64', [-(2 ** 53) + 1, 2 ** 53 - 1])
  assert.ok(big.ok)
  assert.deepEqual(Array.from(big.value.inputs[0]!.data as BigInt64Array), [-(2n ** 53n) + 1n, 2n ** 53n - 1n])
  assert.match(error(parse('BOOL', [1, 0])), /is not a boolean/)
  assert.ok(parse('BYTES', ['a', 'b']).ok)
})

test('outputs asked for, id echoed, INT64 and BOOL written as JSON numbers and booleans', () => {
  const request = parseInferRequest({ id: 'r', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }], outputs: [{ name: 'z' }] }, X, Y)
  assert.ok(request.ok)
  const { response } = inferAnswer('m', 3, request.value, [
    { name: 'y', datatype: 'FP32', shape: [1, 1], data: Float32Array.from([0.5]) },
    { name: 'z', datatype: 'INT64', shape: [1], data: BigInt64Array.from([7n]) },
  ])
  assert.deepEqual(response, { model_name: 'm', model_version: '3', id: 'r', outputs: [{ name: 'z', shape: [1], datatype: 'INT64', data: [7] }] })
  assert.match(error(parseInferRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }], outputs: [{ name: 'w' }] }, X, Y)), /no output "w"; its outputs are "y", "z"/)
  const bools = inferAnswer('m', 1, { inputs: [] }, [{ name: 'b', datatype: 'BOOL', shape: [2], data: Uint8Array.from([1, 0]) }]).response
  assert.deepEqual((bools.outputs[0] as { data: unknown[] }).data, [true, false])
})

test('an empty "outputs" asks for nothing in particular: every output comes back (as KServe and Triton read it)', () => {
  const request = parseInferRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }], outputs: [] }, X, Y)
  assert.ok(request.ok)
  const { response } = inferAnswer('m', 1, request.value, [
    { name: 'y', datatype: 'FP32', shape: [1, 1], data: Float32Array.from([0.5]) },
    { name: 'z', datatype: 'INT64', shape: [1], data: BigInt64Array.from([7n]) },
  ])
  assert.deepEqual(response.outputs.map((o) => o.name), ['y', 'z'])
})

test('optional fields sent as null ("id", "outputs", "parameters", as clients that write every field do) are absent', () => {
  const request = parseInferRequest({ id: null, parameters: null, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], parameters: null, data: [1, 2] }], outputs: null }, X, Y)
  assert.ok(request.ok, error(request as never))
  assert.deepEqual([request.value.id, request.value.outputs], [undefined, undefined])
  assert.match(error(parseInferRequest({ id: 7, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] }, X, Y)), /"id" must be a string/)
})
