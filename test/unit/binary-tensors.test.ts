import test from 'node:test'
import assert from 'node:assert/strict'
import { readBinaryTensor, splitBinaryBody, tensorBytes } from '../../engine/serve/binary-tensors.ts'
import { parseInferRequest } from '../../engine/serve/protocol.ts'
import type { TensorSpec } from '../../engine/serve/protocol.ts'

test('splitBinaryBody: the header is a whole number no larger than the body, and the JSON part parses', () => {
  const body = Buffer.concat([Buffer.from('{"a":1}'), Buffer.from([1, 2, 3])])
  const ok = splitBinaryBody(body, '7')
  assert.ok(ok.ok)
  assert.deepEqual([ok.value.json, [...ok.value.binary]], [{ a: 1 }, [1, 2, 3]])
  for (const bad of ['', ' 7', '7 ', '+7', '-1', '7.0', '0x7', '1e1', '9'.repeat(16)]) assert.equal(splitBinaryBody(body, bad).ok, false, bad)
  assert.match((splitBinaryBody(body, '11') as { error: string }).error, /JSON part has 11 bytes, but the whole body has 10/)
  assert.match((splitBinaryBody(body, '6') as { error: string }).error, /is not valid JSON/)
})

test('readBinaryTensor: fresh aligned arrays from unaligned bytes; sizes and BYTES lengths checked', () => {
  const backing = new Uint8Array(1 + 8)
  new DataView(backing.buffer).setFloat64(1, -2.5, true)
  const fp64 = readBinaryTensor('FP64', 1, backing.subarray(1))
  assert.ok(fp64 instanceof Float64Array && fp64.byteOffset === 0 && fp64.buffer.byteLength === 8)
  assert.deepEqual([...fp64], [-2.5])
  assert.match(readBinaryTensor('INT32', 2, new Uint8Array(7)) as string, /binary_data_size 7 is not 2 elements x 4 bytes = 8/)
  assert.match(readBinaryTensor('BOOL', 2, Uint8Array.from([0, 3])) as string, /element 1 of a BOOL tensor is 3/)
  assert.deepEqual(readBinaryTensor('BYTES', 2, Uint8Array.from([1, 0, 0, 0, 0x61, 0, 0, 0, 0])), ['a', ''])
  assert.match(readBinaryTensor('BYTES', 1, Uint8Array.from([9, 0, 0])) as string, /ends inside the length of element 0/)
  assert.match(readBinaryTensor('BYTES', 1, Uint8Array.from([9, 0, 0, 0, 1])) as string, /says it has 9 bytes, but only 1 are left/)
  assert.deepEqual([...tensorBytes({ name: 'b', datatype: 'BYTES', shape: [2], data: ['é', ''] })], [2, 0, 0, 0, 0xc3, 0xa9, 0, 0, 0, 0])
  assert.deepEqual([...tensorBytes({ name: 'i', datatype: 'INT64', shape: [1], data: BigInt64Array.from([-2n]) })], [0xfe, 255, 255, 255, 255, 255, 255, 255])
})

test('parseInferRequest with binary data: inputs take their bytes in the order they appear, the sizes add up to the binary part', () => {
  const specs: TensorSpec[] = [
    { name: 'a', datatype: 'INT32', shape: [-1] },
    { name: 'b', datatype: 'FP32', shape: [-1] },
  ]
  const binary = Uint8Array.from([7, 0, 0, 0, 0, 0, 0x80, 0x3f])
  const request = { inputs: [{ name: 'b', shape: [1], datatype: 'FP32', parameters: { binary_data_size: 4 } }, { name: 'a', shape: [1], datatype: 'INT32', parameters: { binary_data_size: 4 } }] }
  const parsed = parseInferRequest(request, specs, [], binary)
  assert.ok(parsed.ok)
  // b came first in the JSON: it has the first four bytes.
  assert.deepEqual(parsed.value.inputs.map((i) => [i.name, [...(i.data as Int32Array)]]), [['b', [new Float32Array(new Uint8Array([7, 0, 0, 0]).buffer)[0]]], ['a', [1065353216]]])
  assert.match((parseInferRequest(request, specs, [], binary.subarray(0, 6)) as { error: string }).error, /runs past the end/)
  assert.match((parseInferRequest(request, specs, [], Uint8Array.from([...binary, 0])) as { error: string }).error, /9 bytes of binary data .* add up to 8/)
})
