/**
 * A model registry for model server tests: a fresh migrated database, a data folder, the registry, a
 * viewer token, and `register` for ONNX bytes (optionally staged straight to production); everything
 * is removed when the test ends.
 */
import type test from 'node:test'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { createModels } from '../../engine/models/registry.ts'
import type { Models } from '../../engine/models/registry.ts'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'
import { createTestDatabase, testLogger } from './postgres.ts'

export interface TestRegistry {
  db: Db
  log: Logger
  /** The data folder (the registry's files live under it). */
  dir: string
  models: Models
  /** A viewer token. */
  token: string
  /** Registers the bytes as a new version of `name` (a candidate, or production); returns its number. */
  register(name: string, bytes: Uint8Array, stage?: 'production'): Promise<number>
}

export async function startTestRegistry(t: test.TestContext, prefix = 'cairn-models-'): Promise<TestRegistry> {
  const log = testLogger()
  const db = createDb(await createTestDatabase(t), { log })
  t.after(() => db.close())
  await migrate(db, log)
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const models = createModels({ db, dir, producer: { kind: 'actor', actor: 'test' } })
  const token = (await createToken(db, { name: 'client', role: 'viewer' }))!.token
  const register = async (name: string, bytes: Uint8Array, stage?: 'production'): Promise<number> => {
    const file = join(dir, `${name}-${Math.random()}.onnx`)
    writeFileSync(file, bytes)
    const version = (await models.register({ name, file })).version.version
    if (stage) await models.setStage(name, version, stage, { user: 'test' })
    return version
  }
  return { db, log, dir, models, token, register }
}
