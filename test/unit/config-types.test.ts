import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { CONFIG_TYPES, generateConfigTypes } from '../../scripts/generate-config-types.ts'

test('engine/config/config-types.ts is what schemas/config.schema.json generates (run npm run gen:config-types)', async () => {
  assert.equal(await readFile(CONFIG_TYPES, 'utf8'), await generateConfigTypes())
})
