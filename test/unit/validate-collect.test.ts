/**
 * collectYamlFiles names files as path.join would, however the folder is spelled (it joins names
 * to a folder normalized once, without normalizing every path again).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { isAbsolute, join, relative } from 'node:path'
import { collectYamlFiles } from '../../engine/dag/validate-folder.ts'

/** The walk as written with path.join, as the reference. */
function reference(paths: string[], cwd: string): string[] {
  const files: string[] = []
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || ['node_modules', '.git', '.cairn'].includes(entry.name)) continue
      const full = join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (entry.isFile() && /\.ya?ml$/i.test(entry.name)) files.push(full)
    }
  }
  for (const path of paths) walk(path)
  const shown = files.map((f) => (isAbsolute(f) ? (relative(cwd, f).startsWith('..') ? f : relative(cwd, f)) : f))
  return [...new Set(shown)].sort()
}

test('files are named as path.join names them, for every spelling of a folder', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'cairn-collect-'))
  t.after(() => rmSync(root, { recursive: true, force: true }))
  for (const dir of ['dags', 'dags/sub', 'dags/sub/deeper', 'dags/.hidden', 'dags/node_modules', 'other']) mkdirSync(join(root, dir), { recursive: true })
  for (const file of ['dags/a.yaml', 'dags/b.YML', 'dags/c.txt', 'dags/sub/d.yaml', 'dags/sub/deeper/e.yml', 'dags/.hidden/f.yaml', 'dags/node_modules/g.yaml', 'dags/.h.yaml', 'other/i.yaml']) {
    writeFileSync(join(root, file), 'dag: x\n')
  }
  const cwd = process.cwd()
  process.chdir(root)
  t.after(() => process.chdir(cwd))
  const spellings = [['dags'], ['dags/'], ['./dags'], ['./dags/'], ['.'], ['./'], ['dags/sub/..'], ['dags//sub'], [join(root, 'dags')], [`${root}/dags/`], ['dags', 'dags/sub'], [join(root, 'other'), 'dags']]
  for (const paths of spellings) {
    const found = collectYamlFiles(paths, root).files
    assert.deepEqual(found, reference(paths, root), JSON.stringify(paths))
    assert.ok(found.length > 0)
  }
  // From another folder: absolute names outside it stay absolute.
  assert.deepEqual(collectYamlFiles([join(root, 'dags')], join(root, 'other')).files, reference([join(root, 'dags')], join(root, 'other')))
})
