import { readFileSync } from 'node:fs'
import { parseAllDocuments, LineCounter, visit, isScalar, isCollection } from 'yaml'
for (const f of process.argv.slice(2)) {
  const text = readFileSync(f, 'utf8')
  const lc = new LineCounter()
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, strict: true, schema: 'core' }) as any
  console.log('==', f)
  visit(docs[0], (key, node: any) => { if (node && node.range && (isScalar(node) || isCollection(node))) console.log('  ', node.type ?? (node.flow ? 'flow' : 'block'), node.constructor.name, JSON.stringify(node.range), JSON.stringify(lc.linePos(node.range[0])), JSON.stringify(text.slice(node.range[0], node.range[1]).slice(0, 30))) })
}
