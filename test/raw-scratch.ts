import { readFileSync } from 'node:fs'
import { parseAllDocuments, LineCounter } from 'yaml'
for (const f of process.argv.slice(2)) {
  const text = readFileSync(f, 'utf8')
  const lc = new LineCounter()
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, strict: true, schema: 'core', merge: false, stringKeys: false }) as any
  console.log('==', f)
  for (const d of docs) for (const e of [...d.errors, ...d.warnings]) console.log(' ', e.code, JSON.stringify(e.pos), JSON.stringify(lc.linePos(e.pos[0])), JSON.stringify(lc.linePos(e.pos[1])), e.message.split('\n')[0])
}
