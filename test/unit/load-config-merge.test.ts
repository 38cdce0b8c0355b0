/**
 * CAIRN_CONFIG with several files (`cairn.yaml:/tmp/cairn-local-cluster/cairn.yaml`): each validated on
 * its own, merged in order, a later file's entry replacing an earlier one's whole entry.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { loadConfig } from '../../engine/config/load-config.ts'

function folder(t: { after: (fn: () => void) => void }, files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-config-merge-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text)
  return dir
}

test('several files are merged in order: entries of a mapping by name, the later one winning as a whole', (t) => {
  const dir = folder(t, {
    'cairn.yaml': 'pools:\n  gpu: { slots: 2 }\nclusters:\n  local_slurm: { kind: slurm, submit: { via: local }, partition: debug, workdir: /old }\n  hpc: { kind: slurm, submit: { via: local } }\nsecrets: { dir: .cairn/secrets }\n',
    'fragment.yaml': 'clusters:\n  local_slurm: { kind: slurm, submit: { via: local }, workdir: /new }\n',
  })
  const loaded = loadConfig(`cairn.yaml:${path.join(dir, 'fragment.yaml')}`, dir)
  assert.ok(loaded.ok, JSON.stringify(loaded.diagnostics))
  assert.deepEqual(loaded.config.clusters, { local_slurm: { kind: 'slurm', submit: { via: 'local' }, workdir: '/new' }, hpc: { kind: 'slurm', submit: { via: 'local' } } })
  assert.deepEqual(loaded.config.pools, { gpu: { slots: 2 } })
  assert.deepEqual(loaded.config.secrets, { dir: '.cairn/secrets' })
  assert.equal(loaded.file, `${path.join(dir, 'cairn.yaml')}:${path.join(dir, 'fragment.yaml')}`)
})

test('one invalid or missing file among several fails the whole configuration, naming the file', (t) => {
  const dir = folder(t, { 'cairn.yaml': 'pools:\n  gpu: { slots: 2 }\n', 'bad.yaml': 'clusters:\n  x: { kind: nope }\n' })
  const bad = loadConfig('cairn.yaml:bad.yaml', dir)
  assert.equal(bad.ok, false)
  assert.deepEqual(bad.config, {})
  assert.ok(bad.diagnostics.some((d) => d.file === path.join(dir, 'bad.yaml') && d.severity === 'error'), JSON.stringify(bad.diagnostics))
  const missing = loadConfig('cairn.yaml:gone.yaml', dir)
  assert.equal(missing.ok, false)
  assert.match(missing.diagnostics[0]!.message, /configuration file not found/)
  assert.equal(missing.diagnostics[0]!.file, path.join(dir, 'gone.yaml'))
})

test('one file behaves as before: a missing one is an empty configuration', (t) => {
  const dir = folder(t, {})
  assert.deepEqual(loadConfig('cairn.yaml', dir), { file: undefined, config: {}, diagnostics: [], ok: true })
})
