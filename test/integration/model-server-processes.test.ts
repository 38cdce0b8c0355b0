/**
 * `cairn serve` processes on one Postgres follow the registry: two servers agree within a second of
 * a stage change, a server killed and started again serves the registry's current state, and swaps
 * under steady load (promotions, a canary coming and going) fail no request; the versions that left
 * are unloaded.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { createModels } from '../../engine/models/registry.ts'
import { updateModelStage } from '../../engine/store/models.ts'
import type { ModelStage } from '../../engine/store/models.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'
import { sigmoidModel } from '../helpers/onnx-models.ts'
import { OipClient } from '../helpers/oip-client.ts'
import { waitFor } from '../helpers/engine-extra.ts'

const MAIN = new URL('../../bin/cairn.js', import.meta.url).pathname
const ACTOR = { user: 'test' }
const REQUEST = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [0.3, -0.7, 1.1] }] }

interface Served {
  child: ChildProcess
  client: OipClient
  url: string
}

function startServe(t: test.TestContext, cwd: string, url: string, token: string, args = ['serve', '--port', '0']): Promise<Served> {
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd,
    env: { ...process.env, DATABASE_URL: url, CAIRN_HOME: join(cwd, 'home'), CAIRN_LOG_LEVEL: process.env.CAIRN_TEST_LOG || 'warn', CAIRN_CONFIG: join(cwd, 'cairn.yaml') },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.after(() => stop(child))
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
    if (process.env.CAIRN_TEST_LOG) process.stderr.write(d)
  })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d
      const m = /model server on (http:\/\/\S+?)\/? /.exec(out)
      if (m) resolve({ child, client: new OipClient(m[1]!, token), url: m[1]! })
    })
    child.on('exit', (code) => reject(new Error(`cairn serve exited with ${code}: ${stderr}`)))
  })
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
}

/** Several stage changes in one transaction (as a promotion does: the old production is archived in the same commit). */
async function stages(db: Db, changes: [number, ModelStage, number?][]): Promise<void> {
  await db.tx(async (q) => {
    for (const [version, stage, share] of changes) await updateModelStage(q, 'churn', version, stage, ACTOR, share)
  })
}

async function servedVersion(client: OipClient): Promise<string> {
  const answer = await client.infer('churn', REQUEST)
  assert.equal(answer.status, 200, JSON.stringify(answer.body))
  return answer.body.model_version as string
}

async function setup(t: test.TestContext) {
  const log = testLogger()
  const url = await createTestDatabase(t)
  const db = createDb(url, { log })
  t.after(() => db.close())
  await migrate(db, log)
  const cwd = mkdtempSync(join(tmpdir(), 'cairn-serve-processes-'))
  t.after(() => rmSync(cwd, { recursive: true, force: true }))
  mkdirSync(join(cwd, 'home'))
  writeFileSync(join(cwd, 'cairn.yaml'), 'serve: { batching: { max_batch: 32, max_delay_ms: 1 } }\n')
  const models = createModels({ db, dir: join(cwd, 'home', 'datasets'), producer: { kind: 'actor', actor: 'test' } })
  const versions: number[] = []
  for (let i = 0; i < 4; i++) {
    const file = join(cwd, `m${i}.onnx`)
    writeFileSync(file, sigmoidModel([0.5 + i, -1, 2], 0.1 * i))
    versions.push((await models.register({ name: 'churn', file })).version.version)
  }
  await models.setStage('churn', 1, 'production', ACTOR)
  const token = (await createToken(db, { name: 'client', role: 'viewer' }))!.token
  return { db, url, cwd, token, versions }
}

test('two server processes agree within a second of a stage change; a killed server comes back on the current state', async (t) => {
  const { db, url, cwd, token } = await setup(t)
  const [a, b] = await Promise.all([startServe(t, cwd, url, token), startServe(t, cwd, url, token)])
  assert.deepEqual([await servedVersion(a.client), await servedVersion(b.client)], ['1', '1'])

  const delays: number[] = []
  for (const [changes, expected] of [
    [[[1, 'archived'], [2, 'production']], '2'],
    [[[3, 'canary', 1]], '3'],
    [[[3, 'candidate', 0]], '2'],
  ] as [[number, ModelStage, number?][], string][]) {
    const committed = Date.now()
    await stages(db, changes)
    const seen = await Promise.all([a, b].map(async (s) => {
      await waitFor(`version ${expected} on ${s.url}`, async () => (await servedVersion(s.client)) === expected, 10_000, 10)
      return Date.now() - committed
    }))
    delays.push(Math.max(...seen))
  }
  assert.ok(delays.every((ms) => ms < 1000), `both servers agreed after ${delays.join(', ')} ms`)
  t.diagnostic(`agreement after ${delays.join(", ")} ms`)

  // Killed (no goodbye), the registry changes meanwhile, started again: it serves the new state.
  b.child.kill('SIGKILL')
  await new Promise((r) => b.child.once('exit', r))
  await stages(db, [[2, 'archived'], [4, 'production']])
  const again = await startServe(t, cwd, url, token)
  assert.equal(await servedVersion(again.client), '4')
  await waitFor('the surviving server on version 4', async () => (await servedVersion(a.client)) === '4', 10_000, 10)
})

test('swaps under load fail no request, and the versions that left are unloaded', async (t) => {
  const { db, url, cwd, token } = await setup(t)
  const servers = await Promise.all([startServe(t, cwd, url, token), startServe(t, cwd, url, token)])
  let running = true
  const failures: string[] = []
  const seen = new Map<string, number>()
  let total = 0
  // Bounded load: 8 clients in closed loops, 4 on each server.
  const clients = Array.from({ length: 8 }, async (_, i) => {
    const { client } = servers[i % 2]!
    while (running) {
      const answer = await client.infer('churn', REQUEST, i % 4 === 0 ? { routeKey: `user-${i}` } : {}).catch((error: unknown) => ({ status: 0, body: { error: String(error) } as Record<string, unknown> }))
      total++
      if (answer.status !== 200) failures.push(`${answer.status} ${JSON.stringify(answer.body)}`)
      else seen.set(answer.body.model_version as string, (seen.get(answer.body.model_version as string) ?? 0) + 1)
    }
  })
  // Each change: wait until both servers route by it, then let the load run on it for a while.
  const change = async (changes: [number, ModelStage, number?][], versions: string[]) => {
    await stages(db, changes)
    for (const s of servers) {
      await waitFor(`versions ${versions} on ${s.url}`, async () => ((await s.client.get('/v2/models/churn')).body.versions as string[]).join() === versions.join(), 10_000, 20)
    }
    await new Promise((r) => setTimeout(r, 400))
  }
  await new Promise((r) => setTimeout(r, 400))
  await change([[2, 'canary', 0.1]], ['1', '2'])
  await change([[2, 'canary', 0.5]], ['1', '2'])
  await change([[1, 'archived'], [2, 'production', 1]], ['2'])
  await change([[3, 'canary', 0.5]], ['2', '3'])
  // A rollback: the canary goes back to candidate, all traffic to production at once.
  await change([[3, 'candidate', 0]], ['2'])
  await change([[2, 'archived'], [4, 'production', 1]], ['4'])
  running = false
  await Promise.all(clients)
  assert.deepEqual(failures, [], `${failures.length} of ${total} requests failed`)
  assert.ok(total > 200, `${total} requests`)
  t.diagnostic(`${total} requests during the swaps, versions ${JSON.stringify([...seen])}`)
  for (const v of ['1', '2', '3', '4']) assert.ok((seen.get(v) ?? 0) > 0, `version ${v} served: ${JSON.stringify([...seen])}`)
  // Only version 4 stays loaded on each server.
  for (const s of servers) {
    await waitFor(`only version 4 loaded on ${s.url}`, async () => {
      const text = await (await fetch(`${s.url}/metrics`)).text()
      const loaded = [...text.matchAll(/cairn_serve_traffic_share\{model="churn",version="(\d+)"\}/g)].map((m) => m[1])
      return loaded.join() === '4'
    }, 10_000, 50)
  }
})

test('cairn up runs a model server too', async (t) => {
  const { url, cwd, token } = await setup(t)
  mkdirSync(join(cwd, 'dags'), { recursive: true })
  const up = await startServe(t, cwd, url, token, ['up', '--port', '0'])
  assert.equal((await up.client.get('/v2/health/ready')).status, 200)
  assert.equal(await servedVersion(up.client), '1')
})
