import { readFileSync } from 'node:fs'
import { loadYaml } from '../engine/spec/yaml-load.ts'
import { schemas } from '../engine/spec/schemas.ts'
for (const f of process.argv.slice(2)) {
  const r = loadYaml(readFileSync(f))
  if (!r.ok) continue
  const v = schemas().dag
  v(r.yaml.value)
  console.log('==', f)
  for (const e of v.errors ?? []) console.log(' ', e.keyword, e.instancePath, e.schemaPath, JSON.stringify(e.params), e.propertyName ?? '')
}
