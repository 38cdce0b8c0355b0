import { test } from 'node:test'
import assert from 'node:assert/strict'
import { takeSecretVariables } from '../../engine/secrets/secret-env.ts'

test('secret variables move out of the environment into memory; DATABASE_URL leaves too', () => {
  const env: Record<string, string | undefined> = { PATH: '/bin', CAIRN_SECRET_API: 'a1', CAIRN_SECRET_DB: 'b2', DATABASE_URL: 'postgres://x', CAIRN_HOME: '/h' }
  const taken = takeSecretVariables(env)
  assert.deepEqual({ ...taken }, { CAIRN_SECRET_API: 'a1', CAIRN_SECRET_DB: 'b2' })
  assert.deepEqual(env, { PATH: '/bin', CAIRN_HOME: '/h' })
  assert.ok(Object.isFrozen(taken))
})
