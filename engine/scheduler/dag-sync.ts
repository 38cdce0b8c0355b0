/**
 * Keeps the database in step with the DAG folder, without holding up the event loop or the DAG rows:
 * the folder is listed, stat-ed and read asynchronously; only files whose content hash changed are
 * loaded again (validated and normalized, on worker threads when there are many); nothing is locked
 * until the writes, which are batched, short transactions of only what changed. A pass in which no
 * file changed does not touch the database at all.
 *
 * A valid file becomes a new DAG version when its spec changed; an invalid one is recorded as an
 * import error and its DAG keeps running its last good version. Two files declaring one DAG id:
 * see dag-ownership.ts.
 */
import { readFile, readdir, stat } from 'node:fs/promises'
import { join, relative, resolve, isAbsolute } from 'node:path'
import type { Logger } from 'pino'
import type { DeploymentNames } from '../dag/dag-semantics.ts'
import type { Diagnostic } from '../dag/diagnostics.ts'
import { compareDiagnostics } from '../dag/diagnostics.ts'
import type { LoadedFile } from '../dag/load-dag-file.ts'
import { readDagFiles } from '../dag/load-pool.ts'
import type { ReadItem } from '../dag/load-pool.ts'
import { loadYaml } from '../dag/yaml-load.ts'
import type { Db } from '../store/db.ts'
import { markDagsRemoved, readStoredDags, replaceImportErrors, saveDagVersions } from '../store/dag-sync-writes.ts'
import type { DagWrite, ImportErrorRow } from '../store/dag-sync-writes.ts'
import { markFeatureViewsRemoved, readStoredFeatureViews, saveFeatureViews } from '../store/feature-views.ts'
import type { FeatureViewWrite } from '../store/feature-views.ts'
import { decideOwnership } from './dag-ownership.ts'

interface Seen {
  stamp: string
  mtimeMs: number
  contentHash: string
  loaded: LoadedFile
}

export interface SyncResult {
  /** DAGs whose current version changed in this pass. */
  changed: string[]
  files: number
  /** Files with import errors. */
  errors: number
}

export interface DagSync {
  sync(db: Db): Promise<SyncResult>
}

/** DAG writes per transaction: row locks last one short batch. */
const WRITE_BATCH = 200

const YAML_FILE = /\.ya?ml$/i
const SKIP_DIRS = new Set(['node_modules', '.git', '.cairn'])

export function createDagSync(options: { folder: string; cwd: string; names: DeploymentNames | undefined; log: Logger }): DagSync {
  const { log } = options
  const seen = new Map<string, Seen>()
  /** The last pass did not finish its writes (or skipped some): the next one reconciles even if no file changed. */
  let dirty = true
  let lastErrors = 0

  return {
    async sync(db) {
      const files = await listYamlFiles(resolve(options.cwd, options.folder), options.cwd)
      const stats = await Promise.all(files.map((file) => stat(resolve(options.cwd, file)).catch(() => undefined)))
      const present: { file: string; stamp: string; mtimeMs: number }[] = []
      files.forEach((file, i) => {
        const st = stats[i]
        if (st) present.push({ file, stamp: `${st.size}:${st.mtimeMs}`, mtimeMs: st.mtimeMs })
      })
      // Files added or removed, or a file whose content changed: only then is there anything to write.
      let folderChanged = present.length !== seen.size || present.some((p) => !seen.has(p.file))
      const next = new Map<string, Seen>()
      const stamped = new Map<string, { stamp: string; mtimeMs: number }>()
      const toRead: ReadItem[] = []
      for (const p of present) {
        const before = seen.get(p.file)
        if (before && before.stamp === p.stamp) next.set(p.file, before)
        else {
          stamped.set(p.file, p)
          toRead.push({ file: p.file, path: resolve(options.cwd, p.file), ...(before ? { knownHash: before.contentHash } : {}) })
        }
      }
      for (const r of await readDagFiles(toRead, options.names)) {
        if (r.missing) continue // gone between stat and read: the next pass sees it missing
        const { stamp, mtimeMs } = stamped.get(r.file)!
        const before = seen.get(r.file)
        // Touched but not changed (a checkout, a copy): what was loaded still holds.
        if (!r.loaded) {
          if (before) next.set(r.file, { ...before, stamp, mtimeMs })
          continue
        }
        folderChanged = true
        next.set(r.file, { stamp, mtimeMs, contentHash: r.contentHash, loaded: r.loaded })
        if (!r.loaded.ok) {
          const first = r.loaded.diagnostics.find((d) => d.severity === 'error')
          log.warn({ file: r.file, problems: r.loaded.diagnostics.length, first: first ? `${first.line}:${first.column} ${first.code} ${first.message}` : undefined }, 'DAG file has errors; its last good version keeps running')
        }
      }
      if (!folderChanged && !dirty) return { changed: [], files: present.length, errors: lastErrors }

      const result = await reconcile(db, [...next.values()])
      seen.clear()
      for (const [file, entry] of next) seen.set(file, entry)
      lastErrors = result.errors
      return { ...result, files: present.length }
    },
  }

  async function reconcile(db: Db, entries: readonly Seen[]): Promise<Omit<SyncResult, 'files'>> {
    dirty = true
    const stored = await readStoredDags(db)
    const { owners, duplicates } = decideOwnership(
      entries.map((e) => ({ file: e.loaded.file, kind: e.loaded.kind, id: e.loaded.id, ok: e.loaded.ok, mtimeMs: e.mtimeMs })),
      stored,
    )
    const byFile = new Map(entries.map((e) => [e.loaded.file, e.loaded]))
    const claims = entries.map((e) => ({ file: e.loaded.file, kind: e.loaded.kind, id: e.loaded.id, ok: e.loaded.ok, mtimeMs: e.mtimeMs }))
    const views = await reconcileFeatureViews(db, claims, byFile)

    const writes: DagWrite[] = []
    const removals: { dagId: string; file: string | null }[] = []
    for (const [dagId, file] of owners) {
      const dag = byFile.get(file)?.dag
      const row = stored.get(dagId)
      if (!dag || dag.id !== dagId) continue // broken owner: the last good version keeps running
      if (row && !row.removed && row.file === file && row.hash === dag.hash) continue
      writes.push({ dagId, pausedOnLoad: dag.pausedOnLoad, hash: dag.hash, specJson: dag.specJson, source: dag.source, file, expected: row && { file: row.file, removed: row.removed } })
    }
    for (const row of stored.values()) {
      if (row.removed) continue
      const owner = owners.get(row.dagId)
      if (owner === row.file) continue
      // Its file is gone or has let it go; a valid new owner takes the row over instead.
      if (owner !== undefined && byFile.get(owner)?.dag?.id === row.dagId) continue
      removals.push({ dagId: row.dagId, file: row.file })
    }

    const errors: ImportErrorRow[] = []
    for (const loaded of byFile.values()) {
      const duplicate = duplicates.get(loaded.file)
      const duplicateView = views.duplicates.get(loaded.file)
      if (loaded.ok && !duplicate && !duplicateView) continue
      const diagnostics: Diagnostic[] = loaded.ok ? [] : [...loaded.diagnostics]
      if (duplicate) diagnostics.push(await duplicateDiagnostic(loaded.file, duplicate.dagId, duplicate.owner))
      if (duplicateView) diagnostics.push(await duplicateViewDiagnostic(loaded.file, duplicateView.dagId, duplicateView.owner))
      diagnostics.sort(compareDiagnostics)
      errors.push({ file: loaded.file, dagId: loaded.kind === 'dag' ? (loaded.id ?? null) : null, diagnostics })
    }

    let incomplete = false
    const changed: string[] = []
    for (let i = 0; i < writes.length; i += WRITE_BATCH) {
      const batch = writes.slice(i, i + WRITE_BATCH)
      const saved = await db.tx((q) => saveDagVersions(q, batch))
      for (const c of saved.changed) {
        changed.push(c.dagId)
        log.info({ dag: c.dagId, file: batch.find((w) => w.dagId === c.dagId)?.file, version: c.versionId }, 'DAG loaded')
      }
      if (saved.skipped.length > 0) incomplete = true
    }
    const removed = await markDagsRemoved(db, removals)
    for (const dagId of removed) log.info({ dag: dagId }, 'DAG removed: its file is gone or declares another DAG')
    await db.tx((q) => replaceImportErrors(q, errors))
    for (const [file, d] of duplicates) log.warn({ file, dag: d.dagId, owner: d.owner }, 'duplicate DAG id; the file that declared it first keeps it')
    dirty = incomplete
    return { changed, errors: errors.length }
  }

  /**
   * Feature view files: the same ownership rules as DAG ids (dag-ownership.ts); each owner's
   * definition is saved (a changed one as the next definition version), views whose file is gone or
   * declares something else are marked removed (their history stays).
   */
  async function reconcileFeatureViews(db: Db, claims: Parameters<typeof decideOwnership>[0], byFile: ReadonlyMap<string, LoadedFile>) {
    const stored = await readStoredFeatureViews(db)
    const { owners, duplicates } = decideOwnership(claims, stored, 'feature_view')
    const writes: FeatureViewWrite[] = []
    for (const [name, file] of owners) {
      const view = byFile.get(file)?.featureView
      if (!view || view.name !== name) continue // broken owner: the last good definition stays
      const row = stored.get(name)
      const same = row && !row.removed && row.file === file && row.hash === view.hash && row.description === view.description &&
        row.owner === view.owner && JSON.stringify(row.tags) === JSON.stringify(view.tags)
      if (same) continue
      writes.push({ name, file, hash: view.hash, definitionJson: view.definitionJson, source: view.source, description: view.description, owner: view.owner, tags: view.tags })
    }
    const removals: { name: string; file: string | null }[] = []
    for (const row of stored.values()) {
      if (row.removed) continue
      const owner = owners.get(row.name)
      if (owner === row.file) continue
      if (owner !== undefined && byFile.get(owner)?.featureView?.name === row.name) continue
      removals.push({ name: row.name, file: row.file })
    }
    if (writes.length > 0) {
      const changed = await db.tx((q) => saveFeatureViews(q, writes))
      for (const c of changed) log.info({ feature_view: c.name, definition_version: c.version }, 'feature view loaded')
    }
    for (const name of await db.tx((q) => markFeatureViewsRemoved(q, removals))) log.info({ feature_view: name }, 'feature view removed: its file is gone or declares something else')
    for (const [file, d] of duplicates) log.warn({ file, feature_view: d.dagId, owner: d.owner }, 'duplicate feature view; the file that declared it first keeps it')
    return { duplicates }
  }

  async function duplicateViewDiagnostic(file: string, name: string, owner: string): Promise<Diagnostic> {
    const at = await locateKey(resolve(options.cwd, file), 'feature_view')
    return {
      file,
      line: at.line,
      column: at.column,
      path: 'feature_view',
      code: 'DUPLICATE_FEATURE_VIEW',
      message: `feature view "${name}" is already declared in ${owner}, which keeps it; this file is not loaded until its name is unique`,
      severity: 'error',
    }
  }

  async function duplicateDiagnostic(file: string, dagId: string, owner: string): Promise<Diagnostic> {
    const at = await locateKey(resolve(options.cwd, file), 'dag')
    return {
      file,
      line: at.line,
      column: at.column,
      path: 'dag',
      code: 'DUPLICATE_DAG_ID',
      message: `DAG "${dagId}" is already declared in ${owner}, which keeps it; this file is not loaded until its id is unique`,
      severity: 'error',
    }
  }
}

/** Every *.yaml / *.yml under `folder`, sorted, relative to `cwd` when inside it (as collectYamlFiles names them). */
async function listYamlFiles(folder: string, cwd: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (dir: string): Promise<void> => {
    // A folder that is not there has no files; any other failure fails the pass (the next one tries
    // again) rather than reading as an empty folder, which would remove every DAG.
    const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return []
      throw error
    })
    for (const entry of entries) {
      if (entry.name.startsWith('.') || SKIP_DIRS.has(entry.name)) continue
      const full = join(dir, entry.name)
      if (entry.isDirectory()) await walk(full)
      else if (entry.isFile() && YAML_FILE.test(entry.name)) out.push(full)
    }
  }
  await walk(folder)
  return out
    .map((f) => {
      const rel = relative(cwd, f)
      return rel.startsWith('..') || isAbsolute(rel) ? f : rel
    })
    .sort()
}

/** Position of a top-level key's value; reads the file again, which only happens for the rare duplicate. */
async function locateKey(path: string, key: string): Promise<{ line: number; column: number }> {
  try {
    const loaded = loadYaml(await readFile(path))
    return loaded.ok ? loaded.yaml.locate([key]) : { line: 1, column: 1 }
  } catch {
    return { line: 1, column: 1 }
  }
}
