/** Writes the generated reference pages (docs/reference/*.md, docs/errors.md): `npm run docs`. */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { referencePages } from './docs/reference-pages.ts'

const root = new URL('../', import.meta.url).pathname
for (const [path, text] of referencePages()) {
  mkdirSync(dirname(root + path), { recursive: true })
  writeFileSync(root + path, text)
  console.log(`wrote ${path}`)
}
