/**
 * The model repository's swaps with a fake loader: a new split takes effect only once its versions
 * are loaded, a version that left is released after its last request, a file that cannot be loaded
 * makes its version answer 500 (and is tried again later), and on-demand versions go after idling.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { createModelRepository } from '../../engine/serve/model-repository.ts'
import type { OnnxModel } from '../../engine/serve/onnx-session.ts'
import type { ServedVersionRow } from '../../engine/store/serving.ts'

function fakeLoader() {
  const released: string[] = []
  const pending = new Map<string, () => void>()
  const broken = new Set<string>()
  let gate = false
  const load = async (file: string): Promise<OnnxModel> => {
    if (gate) await new Promise<void>((resolve) => pending.set(file, resolve))
    if (broken.has(file)) throw new Error(`cannot read ${file}`)
    return {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 1] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }],
      run: async () => [{ name: 'y', datatype: 'FP32', shape: [1, 1], data: Float32Array.from([file.length]) }],
      release: async () => void released.push(file),
    }
  }
  return { load, released, pending, broken, hold: (on: boolean) => (gate = on) }
}

const row = (version: number, stage: 'production' | 'canary', share = 0): ServedVersionRow => ({ model: 'm', version, stage, trafficShare: share, artifact: `v${version}`, sha256: 'x', features: [] })

test('the split switches only once the new versions are loaded; the old one goes after its last request', async () => {
  const fake = fakeLoader()
  let clock = 0
  const repo = createModelRepository({ dataDir: '/d', load: fake.load, log: pino({ level: 'silent' }), now: () => clock })
  await repo.apply({ models: ['m'], versions: [row(1, 'production')] })
  assert.deepEqual(repo.split('m'), { production: 1, canary: undefined, canaryShare: 0 })
  const held = repo.acquireRouted('m', 1)
  assert.ok(held.ok)

  // Version 2 loads slowly: until it is loaded, requests still go to version 1.
  fake.hold(true)
  const applying = repo.apply({ models: ['m'], versions: [row(2, 'production')] })
  await new Promise((r) => setImmediate(r))
  assert.equal(repo.split('m')!.production, 1)
  const during = repo.acquireRouted('m', 1)
  assert.ok(during.ok, 'version 1 still serves while 2 loads')
  during.lease.release()
  fake.pending.get('/d/v2')!()
  await applying
  assert.equal(repo.split('m')!.production, 2)
  // Version 1 left the split, but a request still holds it: not released until that request is done.
  assert.deepEqual([...fake.released], [])
  assert.equal(repo.acquireRouted('m', 1).ok, false, 'no new request takes a retired version')
  held.lease.release()
  await new Promise((r) => setImmediate(r))
  assert.deepEqual([...fake.released], ['/d/v1'])

  // A canary whose file cannot be loaded: it answers 500 and is tried again after 10 s.
  fake.hold(false)
  fake.broken.add('/d/v3')
  await repo.apply({ models: ['m'], versions: [row(2, 'production'), row(3, 'canary', 0.5)] })
  const broken = repo.acquireRouted('m', 3)
  assert.ok(!broken.ok && broken.status === 500 && /cannot read \/d\/v3/.test(broken.error))
  assert.equal(repo.ready(), true)
  fake.broken.delete('/d/v3')
  await repo.apply({ models: ['m'], versions: [row(2, 'production'), row(3, 'canary', 0.5)] })
  assert.equal(repo.acquireRouted('m', 3).ok, false, 'not tried again before 10 s')
  clock += 10_000
  await repo.apply({ models: ['m'], versions: [row(2, 'production'), row(3, 'canary', 0.5)] })
  const fixed = repo.acquireRouted('m', 3)
  assert.ok(fixed.ok)
  fixed.lease.release()

  // A version outside the split, asked for by number: loaded on demand, released after idling.
  const extra = await repo.acquire('m', 7, async () => ({ artifact: 'v7', sha256: 'x', features: [] }))
  assert.ok(extra.ok)
  extra.lease.release()
  assert.equal((await repo.acquire('m', 8, async () => undefined)).ok, false)
  clock += 60_000
  repo.sweep()
  await new Promise((r) => setImmediate(r))
  assert.ok(fake.released.includes('/d/v7'))
  assert.ok(!fake.released.includes('/d/v2') && !fake.released.includes('/d/v3'), 'routed versions stay')
  await repo.close()
})
