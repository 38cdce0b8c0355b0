/**
 * The model server while Postgres is down: loaded versions keep answering (with `auth: none`; a
 * token cannot be checked, so bearer requests get 503 with a clear message, not a crash), the figures
 * counted meanwhile are written once the database is back, and tokens work again.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { createDb } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { createModels } from '../../engine/models/registry.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'
import { createServeServer } from '../../engine/serve/serve-server.ts'
import type { ServeServerOptions } from '../../engine/serve/serve-server.ts'
import { readServingWindow } from '../../engine/serve/serving-stats.ts'
import { cleanupStack, startRestartablePostgres, waitFor } from '../helpers/engine-extra.ts'
import { testLogger } from '../helpers/postgres.ts'
import { sigmoidModel } from '../helpers/onnx-models.ts'
import { OipClient } from '../helpers/oip-client.ts'

const REQUEST = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [0.3, -0.7, 1.1] }] }

test('a database outage: loaded versions keep answering, token checks answer 503, figures are written afterwards', async (t) => {
  const defer = cleanupStack(t)
  const pg = await startRestartablePostgres(defer)
  const log = testLogger()
  const db = createDb(pg.url, { log, connectTimeoutMs: 2000 })
  defer(() => db.close())
  await migrate(db, log)
  const dir = mkdtempSync(join(tmpdir(), 'cairn-serve-outage-'))
  defer(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'm.onnx')
  writeFileSync(file, sigmoidModel([0.5, -1, 2], 0.1))
  const models = createModels({ db, dir, producer: { kind: 'actor', actor: 'test' } })
  await models.register({ name: 'churn', file })
  await models.setStage('churn', 1, 'production', { user: 'test' })
  const token = (await createToken(db, { name: 'client', role: 'viewer' }))!.token
  const start = async (options: Partial<ServeServerOptions>) => {
    const server = await createServeServer({ db, log, dataDir: dir, flushMs: 50, ...options })
    defer(() => server.close())
    await server.app.listen({ port: 0, host: '127.0.0.1' })
    return `http://127.0.0.1:${(server.app.server.address() as { port: number }).port}`
  }
  const withToken = new OipClient(await start({}), token)
  const open = new OipClient(await start({ auth: 'none' }))
  assert.equal((await withToken.infer('churn', REQUEST)).status, 200)
  const since = new Date(Date.now() - 1000)

  await pg.stop()
  for (let i = 0; i < 20; i++) assert.equal((await open.infer('churn', REQUEST)).status, 200)
  const refused = await withToken.infer('churn', REQUEST)
  assert.equal(refused.status, 503)
  assert.match(refused.body.error as string, /database cannot be reached to check the token/)
  assert.equal((await withToken.get('/v2/health/live')).status, 200)

  await pg.start()
  await waitFor('tokens checked again', async () => (await withToken.infer('churn', REQUEST)).status === 200, 30_000, 100)
  // The 20 answers given during the outage (and the others) reach the table.
  await waitFor('the figures of the outage written', async () => (await readServingWindow(db, 'churn', 1, since).catch(() => ({ requests: 0 }))).requests >= 22, 30_000, 100)
})
