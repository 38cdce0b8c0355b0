/**
 * Writes engine/config/config-types.ts: the TypeScript types of cairn.yaml, generated from
 * schemas/config.schema.json so the schema stays the one description of the file.
 * Run `npm run gen:config-types` after changing the schema (test/unit/config-types.test.ts fails
 * until the generated file matches).
 */
import { readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { compile } from 'json-schema-to-typescript'
import type { JSONSchema } from 'json-schema-to-typescript'

const SCHEMA = fileURLToPath(new URL('../schemas/config.schema.json', import.meta.url))
export const CONFIG_TYPES = fileURLToPath(new URL('../engine/config/config-types.ts', import.meta.url))

export async function generateConfigTypes(): Promise<string> {
  // The schema's title would name the type; the code calls it CairnConfig.
  const schema = { ...(JSON.parse(await readFile(SCHEMA, 'utf8')) as JSONSchema), title: 'CairnConfig' }
  const body = await compile(schema, 'CairnConfig', {
    bannerComment: '',
    additionalProperties: false,
    strictIndexSignatures: true,
    format: true,
    style: { semi: false, singleQuote: true, printWidth: 140 },
  })
  return `// Generated from schemas/config.schema.json by scripts/generate-config-types.ts: do not edit by hand\n// (npm run gen:config-types).\n${body}`
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await writeFile(CONFIG_TYPES, await generateConfigTypes())
  console.log(`wrote ${CONFIG_TYPES}`)
}
