/**
 * The documentation cannot drift from the code: the reference pages generated from the schemas and
 * the error registry equal the committed ones (regenerate with `npm run docs`), every page is linked,
 * and every YAML snippet in the README and docs/ is valid: whole DAGs, feature views and cairn.yaml
 * files as they are; snippets of tasks (a mapping of task ids to tasks) inside a DAG, where their
 * operator params are checked against the operator's schema.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { load } from 'js-yaml'
import { referencePages } from '../../scripts/docs/reference-pages.ts'
import { validateText } from '../../engine/dag/validate.ts'
import type { FileKind } from '../../engine/dag/validate.ts'

const ROOT = new URL('../../', import.meta.url).pathname

function markdownFiles(): string[] {
  const found = [join(ROOT, 'README.md')]
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else if (name.endsWith('.md')) found.push(path)
    }
  }
  walk(join(ROOT, 'docs'))
  return found
}

/** ```yaml blocks with the line they start on. */
function yamlSnippets(text: string): { line: number; text: string }[] {
  const snippets: { line: number; text: string }[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*```ya?ml\s*$/.test(lines[i]!)) continue
    const indent = /^\s*/.exec(lines[i]!)![0].length
    const body: string[] = []
    let j = i + 1
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]!); j++) body.push(lines[j]!.slice(indent))
    snippets.push({ line: i + 2, text: body.join('\n') })
    i = j
  }
  return snippets
}

const CONFIG_KEYS = new Set(['dags_folder', 'home', 'database_url', 'web', 'pools', 'clusters', 'ssh_hosts', 'connections', 'secrets', 'model_servers', 'data', 'workers', 'scheduler', 'retention', 'log', 'serve'])

/** What the snippet is, and the text to validate. */
function classify(value: unknown, text: string): { kind: FileKind; text: string; tasksOnly: boolean } | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined
  const doc = value as Record<string, unknown>
  if ('dag' in doc) return { kind: 'dag', text, tasksOnly: false }
  if ('feature_view' in doc) return { kind: 'feature_view', text, tasksOnly: false }
  if (Object.keys(doc).length > 0 && Object.keys(doc).every((k) => CONFIG_KEYS.has(k))) return { kind: 'config', text, tasksOnly: false }
  const tasks = Object.values(doc)
  if (tasks.length > 0 && tasks.every((t) => t !== null && typeof t === 'object' && 'operator' in (t as object))) {
    const indented = text.split('\n').map((l) => `  ${l}`).join('\n')
    return { kind: 'dag', text: `dag: snippet\ntasks:\n${indented}\n`, tasksOnly: true }
  }
  return undefined
}

/** Problems a snippet of tasks cannot avoid: it names tasks and params of a DAG it is part of. */
const OUT_OF_CONTEXT = new Set(['UNKNOWN_DEPENDENCY', 'TEMPLATE_UNKNOWN_TASK', 'TEMPLATE_UNKNOWN_PARAM', 'TEMPLATE_NOT_UPSTREAM'])

describe('docs', () => {
  it('the generated reference pages are current (npm run docs)', () => {
    for (const [path, expected] of referencePages()) {
      let committed = ''
      try {
        committed = readFileSync(join(ROOT, path), 'utf8')
      } catch {
        assert.fail(`${path} is missing: run npm run docs`)
      }
      assert.ok(committed === expected, `${path} is stale: run npm run docs`)
    }
  })

  it('the reference pages are linked from the README', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    for (const path of referencePages().keys()) assert.ok(readme.includes(path), `README.md links ${path}`)
  })

  it('every YAML snippet in the README and docs/ is valid', () => {
    let checked = 0
    const problems: string[] = []
    for (const file of markdownFiles()) {
      for (const snippet of yamlSnippets(readFileSync(file, 'utf8'))) {
        const where = `${relative(ROOT, file)}:${snippet.line}`
        let value: unknown
        try {
          value = load(snippet.text)
        } catch (error) {
          problems.push(`${where}: not YAML: ${(error as Error).message.split('\n')[0]}`)
          continue
        }
        const what = classify(value, snippet.text)
        if (!what) {
          problems.push(`${where}: neither a DAG, a feature view, a cairn.yaml nor a mapping of tasks`)
          continue
        }
        const result = validateText(`${where}.yaml`, what.text, { kind: what.kind })
        for (const d of result.diagnostics) {
          if (d.severity !== 'error' || (what.tasksOnly && OUT_OF_CONTEXT.has(d.code))) continue
          problems.push(`${where}: ${d.code} ${d.message}`)
        }
        checked++
      }
    }
    assert.deepEqual(problems, [])
    assert.ok(checked >= 4, `${checked} snippets checked`)
  })
})
