/** DAGs, their immutable versions, import errors and the paused flag. */
import type { DagSpec } from '../dag/dag-model.ts'
import type { Diagnostic } from '../dag/diagnostics.ts'
import { readStoredSpec } from '../dag/spec-format.ts'
import type { Queryable } from './queryable.ts'
import { perDatabase } from './queryable.ts'

export interface DagRow {
  dagId: string
  file: string | null
  paused: boolean
  versionId: number | null
  scheduleCursor: Date | null
  enabledAt: Date | null
  removed: boolean
}

interface RawDag {
  dag_id: string
  file: string | null
  paused: boolean
  version_id: string | null
  schedule_cursor: Date | null
  enabled_at: Date | null
  removed: boolean
}

const toDag = (r: RawDag): DagRow => ({
  dagId: r.dag_id,
  file: r.file,
  paused: r.paused,
  versionId: r.version_id === null ? null : Number(r.version_id),
  scheduleCursor: r.schedule_cursor,
  enabledAt: r.enabled_at,
  removed: r.removed,
})

// A DAG folder sync writes DAG rows, versions and import errors through dag-sync-writes.ts.

export async function setPaused(q: Queryable, dagId: string, paused: boolean): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE cairn.dag SET paused = $2, updated_at = now(), enabled_at = CASE WHEN paused AND NOT $2 THEN now() ELSE enabled_at END WHERE dag_id = $1`,
    [dagId, paused],
  )
  return (rowCount ?? 0) > 0
}

export async function getDag(q: Queryable, dagId: string, lock = false): Promise<DagRow | undefined> {
  const { rows } = await q.query<RawDag>(`SELECT dag_id, file, paused, version_id, schedule_cursor, enabled_at, removed FROM cairn.dag WHERE dag_id = $1${lock ? ' FOR UPDATE' : ''}`, [dagId])
  return rows[0] ? toDag(rows[0]) : undefined
}

export async function listDags(q: Queryable): Promise<DagRow[]> {
  const { rows } = await q.query<RawDag>('SELECT dag_id, file, paused, version_id, schedule_cursor, enabled_at, removed FROM cairn.dag ORDER BY dag_id')
  return rows.map(toDag)
}

export async function setScheduleCursor(q: Queryable, dagId: string, cursor: Date): Promise<void> {
  await q.query('UPDATE cairn.dag SET schedule_cursor = $2 WHERE dag_id = $1 AND (schedule_cursor IS NULL OR schedule_cursor < $2)', [dagId, cursor])
}

export interface ImportError {
  file: string
  dagId: string | null
  diagnostics: Diagnostic[]
}

export async function listImportErrors(q: Queryable): Promise<ImportError[]> {
  const { rows } = await q.query<{ file: string; dag_id: string | null; diagnostics: Diagnostic[] }>('SELECT file, dag_id, diagnostics FROM cairn.import_error ORDER BY file')
  return rows.map((r) => ({ file: r.file, dagId: r.dag_id, diagnostics: r.diagnostics }))
}

/** Import errors that concern one DAG: of its own file, or of another file declaring its id (a duplicate). */
export async function listImportErrorsOfDag(q: Queryable, dagId: string, file: string | null): Promise<ImportError[]> {
  const { rows } = await q.query<{ file: string; dag_id: string | null; diagnostics: Diagnostic[] }>(
    'SELECT file, dag_id, diagnostics FROM cairn.import_error WHERE dag_id = $1 OR file = $2 ORDER BY file',
    [dagId, file],
  )
  return rows.map((r) => ({ file: r.file, dagId: r.dag_id, diagnostics: r.diagnostics }))
}

/** Versions never change, so they are cached, per database (version ids of two databases are unrelated). */
const MAX_CACHED_VERSIONS = 1000
const versionCache = perDatabase(() => new Map<number, DagSpec>())

/** A DAG version's spec, in the current shape whatever format it was stored in (see spec-format.ts). */
export async function getDagVersion(q: Queryable, versionId: number): Promise<DagSpec> {
  const versions = versionCache(q)
  const cached = versions.get(versionId)
  if (cached) return cached
  const { rows } = await q.query<{ spec: unknown }>('SELECT spec FROM cairn.dag_version WHERE version_id = $1', [versionId])
  if (!rows[0]) throw new Error(`DAG version ${versionId} does not exist`)
  const read = readStoredSpec(rows[0].spec)
  if (!read.ok) throw new Error(`DAG version ${versionId} cannot be read: ${read.message}`)
  if (versions.size >= MAX_CACHED_VERSIONS) versions.clear()
  versions.set(versionId, read.spec)
  return read.spec
}
