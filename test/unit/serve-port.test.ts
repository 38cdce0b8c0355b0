/** The model server's port (SPEC section 7): CAIRN_SERVE_PORT, else cairn.yaml serve.port, else 8081. */
import test from 'node:test'
import assert from 'node:assert/strict'
import { servePort } from '../../engine/serve/start-serve.ts'
import type { Settings } from '../../engine/config/settings.ts'
import type { CairnConfig } from '../../engine/config/load-config.ts'

const settings = (env: Record<string, string>) => ({ env }) as unknown as Settings

test('CAIRN_SERVE_PORT, else serve.port, else 8081', () => {
  assert.equal(servePort(settings({}), undefined), 8081)
  assert.equal(servePort(settings({ CAIRN_SERVE_PORT: '' }), {} as CairnConfig), 8081)
  assert.equal(servePort(settings({}), { serve: { port: 9001 } } as CairnConfig), 9001)
  assert.equal(servePort(settings({ CAIRN_SERVE_PORT: '9100' }), { serve: { port: 9001 } } as CairnConfig), 9100)
  assert.throws(() => servePort(settings({ CAIRN_SERVE_PORT: 'http' }), undefined), /CAIRN_SERVE_PORT="http" is not a port number/)
})
