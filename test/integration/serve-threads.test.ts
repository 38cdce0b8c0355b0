/**
 * Model threads (engine/serve/onnx-threads.ts) on real ONNX models: a dear run goes to the version's
 * thread only while other requests are in progress (its input is transferred there), with the same
 * answers as on the event loop; a thread that stops fails its waiting runs with a message that says
 * so (a 500 over HTTP) and is replaced; a thread that cannot load the model is not started again; a
 * version swap under load fails no request, and unloading a version stops its threads.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { createDb } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { createModels } from '../../engine/models/registry.ts'
import { updateModelStage } from '../../engine/store/models.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'
import { createServeServer } from '../../engine/serve/serve-server.ts'
import type { ServeServerOptions } from '../../engine/serve/serve-server.ts'
import { loadOnnxModel } from '../../engine/serve/onnx-session.ts'
import type { OnnxModel } from '../../engine/serve/onnx-session.ts'
import { modelThreads, startModelThreads } from '../../engine/serve/onnx-threads.ts'
import type { InputTensor } from '../../engine/serve/protocol.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'
import { mlpModel, sigmoidModel, sigmoidReference, typedModel } from '../helpers/onnx-models.ts'
import { OipClient, output } from '../helpers/oip-client.ts'
import { waitFor } from '../helpers/engine-extra.ts'

const W1 = [0.5, -1, 2]
const B1 = 0.1
const W2 = [-0.25, 0.75, 0.5]
const B2 = -0.2
const ACTOR = { user: 'test' }

const until = <T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, ms = 20_000) => waitFor(what, check, ms, 20)

function tempDir(t: test.TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-serve-threads-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const xs = (rows: number, features: number, base = 0) => Array.from({ length: rows * features }, (_, i) => (((i + base) * 37) % 100) / 50 - 1)
const input = (rows: number, features: number, base = 0): InputTensor[] => [{ name: 'x', datatype: 'FP32', shape: [rows, features], data: Float32Array.from(xs(rows, features, base)) }]
/** Whether a run took its input to a thread: a transferred buffer is left detached (length 0) here. */
const transferred = (given: InputTensor[]) => (given[0]!.data as Float32Array).length === 0
const close = (a: ArrayLike<number>, b: readonly number[]) => a.length === b.length && b.every((v, i) => Math.abs(a[i]! - v) < 1e-5)

/** Runs with overlap until one goes to a thread (the thread is ready); its answer. */
async function runOnThread(model: OnnxModel, given: () => InputTensor[]) {
  return until('a run on the model thread', async () => {
    const inputs = given()
    const out = await model.run(inputs, { overlap: true })
    return transferred(inputs) ? out : undefined
  })
}

test('a dear run goes to the thread only while other requests are in progress, with the same answers as on the event loop', async (t) => {
  const file = join(tempDir(t), 'sigmoid.onnx')
  writeFileSync(file, sigmoidModel(W1, B1))
  const before = modelThreads().length
  const model = await loadOnnxModel(file, { threads: 1, inlineBelowMs: 0 })
  let released = false
  t.after(async () => {
    if (!released) await model.release()
  })
  assert.equal(modelThreads().length, before + 1, 'one thread started with the version')

  const onThread = await runOnThread(model, () => input(5, 3))
  assert.deepEqual(onThread[0]!.shape, [5, 1])
  assert.ok(close(onThread[0]!.data as Float32Array, sigmoidReference(xs(5, 3), W1, B1)), 'the thread answers what the model computes')
  // Without other requests in progress, a run stays here (its input is not handed over).
  const alone = input(5, 3)
  const here = await model.run(alone)
  assert.equal(transferred(alone), false)
  assert.ok(close(here[0]!.data as Float32Array, sigmoidReference(xs(5, 3), W1, B1)))
  // Many at once: all on the thread, each with its own answer.
  const many = Array.from({ length: 20 }, (_, i) => input(1 + (i % 4), 3, i))
  const answers = await Promise.all(many.map((m) => model.run(m, { overlap: true })))
  assert.ok(many.every(transferred), 'every run went to the thread')
  answers.forEach((out, i) => assert.ok(close(out[0]!.data as Float32Array, sigmoidReference(xs(1 + (i % 4), 3, i), W1, B1)), `answer ${i}`))

  await model.release()
  released = true
  assert.equal(modelThreads().length, before, 'releasing the version stops its thread')
})

test('every datatype comes back from the thread as from the event loop (INT64, FP64, BOOL, INT32)', async (t) => {
  const file = join(tempDir(t), 'typed.onnx')
  writeFileSync(file, typedModel())
  const model = await loadOnnxModel(file, { threads: 1, inlineBelowMs: 0 })
  t.after(() => model.release())
  const inputs = (): InputTensor[] => [
    { name: 'ids', datatype: 'INT64', shape: [2, 2], data: BigInt64Array.from([1n, -2n, 9007199254740990n, 4n]) },
    { name: 'values', datatype: 'FP64', shape: [2, 3], data: Float64Array.from([0.1, -2.5, 1e300, 3, 4, 5]) },
    { name: 'flags', datatype: 'BOOL', shape: [2], data: Uint8Array.from([1, 0]) },
    { name: 'counts', datatype: 'INT32', shape: [2], data: Int32Array.from([-7, 2147483647]) },
  ]
  const here = await model.run(inputs())
  const there = await runOnThread(model, inputs)
  assert.deepEqual(there.map((o) => [o.name, o.datatype, o.shape, Array.from(o.data as ArrayLike<unknown>)]), here.map((o) => [o.name, o.datatype, o.shape, Array.from(o.data as ArrayLike<unknown>)]))
  assert.deepEqual(Array.from(there[0]!.data as BigInt64Array), [2n, -1n, 9007199254740991n, 5n])
})

test('a run expected to cost less than the hand-over stays on the event loop, and is measured again now and then', async (t) => {
  const file = join(tempDir(t), 'sigmoid.onnx')
  writeFileSync(file, sigmoidModel(W1, B1))
  const model = await loadOnnxModel(file, { threads: 1, inlineBelowMs: 1000 })
  t.after(() => model.release())
  // Unknown cost: the first run with overlap goes to the thread, which measures it (far below 1 s).
  await runOnThread(model, () => input(2, 3))
  const runs = Array.from({ length: 64 }, () => input(2, 3))
  for (const r of runs) await model.run(r, { overlap: true })
  assert.equal(runs.filter(transferred).length, 1, 'one in 64 cheap runs goes to the thread to measure it again')
})

test('a thread that stops fails its waiting runs with a message that says so, and a new thread takes its place', async (t) => {
  const file = join(tempDir(t), 'mlp.onnx')
  writeFileSync(file, mlpModel(64, 512))
  const before = modelThreads().length
  const stops: string[] = []
  const model = await loadOnnxModel(file, { threads: 1, inlineBelowMs: 0, onThreadStop: (why, restarted) => stops.push(`${restarted}: ${why}`) })
  t.after(() => model.release())
  await runOnThread(model, () => input(64, 64))

  const thread = modelThreads().at(-1)!
  // A message the thread does not know makes it throw (an uncaught error): it stops before the runs after it.
  thread.worker.postMessage({ kind: 'unknown' })
  const runs = Array.from({ length: 6 }, () => model.run(input(64, 64), { overlap: true }).then(() => 'answered', (error: Error) => error.message))
  const outcomes = await Promise.all(runs)
  const why = 'the model thread got a message it does not know: {"kind":"unknown"}'
  assert.deepEqual(outcomes, Array(6).fill(`the model's thread stopped before it answered (${why})`))
  assert.deepEqual(stops, [`true: ${why}`])

  // A new thread answers the next runs.
  const out = await runOnThread(model, () => input(3, 64))
  assert.deepEqual(out[0]!.shape, [3, 1])
  assert.equal(modelThreads().length, before + 1, 'one thread in place of the stopped one, not two')
  assert.notEqual(modelThreads().at(-1)!.worker, thread.worker)
})

test('a thread that cannot load the model is not started again', async () => {
  const stops: [string, boolean][] = []
  const threads = startModelThreads('/nonexistent/model.onnx', { count: 1, onStop: (why, restarted) => stops.push([why, restarted]) })
  try {
    await until('the thread to stop', () => stops.length > 0)
    assert.equal(stops[0]![1], false)
    assert.match(stops[0]![0], /cannot load the model/)
    assert.equal(threads.ready(), false)
    // Not started again: no thread appears over a while (a restart takes well under this).
    const deadline = Date.now() + 500
    while (Date.now() < deadline) {
      assert.equal(threads.size(), 0)
      await new Promise((r) => setTimeout(r, 20))
    }
    assert.equal(stops.length, 1)
  } finally {
    await threads.close()
  }
})

async function serveSetup(t: test.TestContext, options: Partial<ServeServerOptions>) {
  const log = testLogger()
  const db = createDb(await createTestDatabase(t), { log })
  t.after(() => db.close())
  await migrate(db, log)
  const dir = tempDir(t)
  const models = createModels({ db, dir, producer: { kind: 'actor', actor: 'test' } })
  const token = (await createToken(db, { name: 'client', role: 'viewer' }))!.token
  const register = async (name: string, bytes: Uint8Array) => {
    const file = join(dir, `${name}-${Math.random()}.onnx`)
    writeFileSync(file, bytes)
    return (await models.register({ name, file })).version.version
  }
  const start = async () => {
    const server = await createServeServer({ db, log, dataDir: dir, flushMs: 50, pollMs: 200, ...options })
    t.after(() => server.close())
    await server.app.listen({ port: 0, host: '127.0.0.1' })
    return { server, client: new OipClient(`http://127.0.0.1:${(server.app.server.address() as { port: number }).port}`, token) }
  }
  /** Archives `from` and promotes `to` in one transaction, as a rollout does. */
  const promote = (name: string, from: number, to: number) =>
    db.tx(async (q) => {
      await updateModelStage(q, name, from, 'archived', ACTOR)
      await updateModelStage(q, name, to, 'production', ACTOR)
    })
  return { models, register, start, promote }
}

test('over HTTP, a stopped model thread is a 500 that names it, and the server answers again', async (t) => {
  const s = await serveSetup(t, { threads: 1, inlineBelowMs: 0 })
  const v = await s.register('heavy', mlpModel(64, 2048))
  await s.models.setStage('heavy', v, 'production', ACTOR)
  const { client } = await s.start()
  const request = () => client.infer('heavy', { inputs: [{ name: 'x', shape: [64, 64], datatype: 'FP32', data: xs(64, 64) }] })
  assert.equal((await request()).status, 200)
  await until('the model thread ready', () => modelThreads().length === 1 && modelThreads()[0]!.ready)

  // Concurrent requests (so that runs go to the thread); the thread stops (an uncaught error) with runs
  // handed to it. Whether one is still unanswered when the thread reads the message is a race with the
  // runs (a loaded machine may answer them all first): the thread is replaced either way, so try again.
  let failed: Awaited<ReturnType<typeof request>>[] = []
  let thread = modelThreads()[0]!.worker
  for (let round = 0; round < 5 && failed.length === 0; round++) {
    await until('the model thread ready', () => modelThreads().length === 1 && modelThreads()[0]!.ready)
    thread = modelThreads()[0]!.worker
    const stopped = new Promise((resolve) => thread.once('exit', resolve))
    let answered = false
    const answers = Promise.all(Array.from({ length: 12 }, request)).finally(() => (answered = true))
    // Checked on every turn of the event loop, so the message goes out as soon as a run is handed over.
    while (!answered && modelThreads()[0]!.waiting === 0) await new Promise((resolve) => setImmediate(resolve))
    if (answered) continue // every run was answered before one could be caught on the thread
    thread.postMessage({ kind: 'unknown' })
    const got = await answers
    await stopped
    failed = got.filter((a) => a.status !== 200)
  }
  assert.ok(failed.length >= 1, 'some request was on the stopped thread')
  for (const a of failed) {
    assert.equal(a.status, 500)
    assert.match(String(a.body.error), /^version 1 of model heavy failed on this request: the model's thread stopped before it answered/)
    assert.equal(a.body.model_version, '1')
  }
  // The server keeps answering (on the event loop, then on the new thread).
  const again = await Promise.all(Array.from({ length: 6 }, request))
  assert.deepEqual(again.map((a) => a.status), [200, 200, 200, 200, 200, 200])
  await until('the thread replaced', () => modelThreads().length === 1 && modelThreads()[0]!.worker !== thread)
})

test('a version swap under load with model threads fails no request; unloading a version stops its threads', async (t) => {
  const s = await serveSetup(t, { threads: 1, inlineBelowMs: 0, batching: { maxBatch: 16 } })
  const v1 = await s.register('churn', sigmoidModel(W1, B1))
  await s.models.setStage('churn', v1, 'production', ACTOR)
  const { client } = await s.start()
  assert.equal(modelThreads().length, 1, 'one thread for version 1')
  await until('the model thread ready', () => modelThreads()[0]!.ready)

  const failures: string[] = []
  const seen = new Set<string>()
  let running = true
  let answered = 0
  const clients = Array.from({ length: 8 }, async (_, c) => {
    while (running) {
      const data = xs(1 + (c % 3), 3, c)
      const a = await client.infer('churn', { inputs: [{ name: 'x', shape: [1 + (c % 3), 3], datatype: 'FP32', data }] })
      answered++
      if (a.status !== 200) {
        failures.push(`${a.status} ${JSON.stringify(a.body)}`)
        continue
      }
      const version = String(a.body.model_version)
      seen.add(version)
      const [w, b] = version === '1' ? [W1, B1] : [W2, B2]
      if (!close(output(a, 'y').data as number[], sigmoidReference(data, w, b))) failures.push(`wrong answer from version ${version}`)
    }
  })
  await until('requests on version 1', () => answered >= 100)
  const v2 = await s.register('churn', sigmoidModel(W2, B2))
  await s.promote('churn', v1, v2)
  await until('answers from version 2', () => seen.has(String(v2)))
  const at = answered
  await until('more requests on version 2', () => answered >= at + 100)
  running = false
  await Promise.all(clients)
  assert.deepEqual(failures, [])
  assert.ok(seen.has('1'), 'version 1 answered before the swap')
  await until('only version 2 keeps a thread', () => modelThreads().length === 1)

  // No version routed any more: no thread left.
  await s.models.setStage('churn', v2, 'archived', ACTOR)
  await until('no model thread left', () => modelThreads().length === 0)
})
