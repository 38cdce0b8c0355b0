/**
 * The writes of a DAG folder sync, batched: the rows as they are (read without locks), new DAG
 * versions, removed DAGs and import errors. Each write re-checks under the row lock that the DAG
 * still belongs to the file the sync decided from, so two schedulers syncing at once never undo
 * each other: a row that changed in between is left for the next pass.
 */
import type { Diagnostic } from '../dag/diagnostics.ts'
import type { Queryable } from './queryable.ts'

export interface StoredDagRow {
  dagId: string
  file: string | null
  removed: boolean
  /** Hash of the current version's spec. */
  hash: string | null
}

export async function readStoredDags(q: Queryable): Promise<Map<string, StoredDagRow>> {
  const { rows } = await q.query<{ dag_id: string; file: string | null; removed: boolean; hash: string | null }>(
    'SELECT d.dag_id, d.file, d.removed, v.hash FROM cairn.dag d LEFT JOIN cairn.dag_version v ON v.version_id = d.version_id',
  )
  return new Map(rows.map((r) => [r.dag_id, { dagId: r.dag_id, file: r.file, removed: r.removed, hash: r.hash }]))
}

export interface DagWrite {
  dagId: string
  /** Set `paused` when the DAG row is created. */
  pausedOnLoad: boolean
  hash: string
  /** The normalized spec (DagSpec) as JSON. */
  specJson: string
  source: string
  file: string
  /** The row as the sync read it (undefined: there was none). */
  expected: { file: string | null; removed: boolean } | undefined
}

/**
 * Saves new versions (and the file) of the given DAGs in one transaction; the caller keeps batches
 * small so row locks are short. Returns the DAGs whose current version changed, and those skipped
 * because another process changed their row since it was read.
 */
export async function saveDagVersions(q: Queryable, writes: readonly DagWrite[]): Promise<{ changed: { dagId: string; versionId: number }[]; skipped: string[] }> {
  const ids = writes.map((w) => w.dagId)
  const { rows } = await q.query<{ dag_id: string; file: string | null; removed: boolean }>(
    'SELECT dag_id, file, removed FROM cairn.dag WHERE dag_id = ANY($1::text[]) ORDER BY dag_id FOR UPDATE',
    [ids],
  )
  const now = new Map(rows.map((r) => [r.dag_id, r]))
  const skipped: string[] = []
  const go = writes.filter((w) => {
    const row = now.get(w.dagId)
    const same = w.expected === undefined ? row === undefined : row !== undefined && row.file === w.expected.file && row.removed === w.expected.removed
    if (!same) skipped.push(w.dagId)
    return same
  })
  if (go.length === 0) return { changed: [], skipped }
  // The paused flag is only set the first time; afterwards `cairn pause`/`unpause` rule.
  await q.query(
    `INSERT INTO cairn.dag (dag_id, file, paused, enabled_at)
       SELECT w.dag_id, w.file, w.paused, CASE WHEN w.paused THEN NULL ELSE now() END
         FROM unnest($1::text[], $2::text[], $3::boolean[]) AS w (dag_id, file, paused)
     ON CONFLICT (dag_id) DO UPDATE SET file = excluded.file, removed = false, updated_at = now()
       WHERE cairn.dag.file IS DISTINCT FROM excluded.file OR cairn.dag.removed`,
    [go.map((w) => w.dagId), go.map((w) => w.file), go.map((w) => w.pausedOnLoad)],
  )
  await q.query(
    `INSERT INTO cairn.dag_version (dag_id, hash, spec, source)
       SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[])
     ON CONFLICT (dag_id, hash) DO NOTHING`,
    [go.map((w) => w.dagId), go.map((w) => w.hash), go.map((w) => w.specJson), go.map((w) => w.source)],
  )
  const updated = await q.query<{ dag_id: string; version_id: string }>(
    `UPDATE cairn.dag d SET version_id = v.version_id, updated_at = now()
       FROM unnest($1::text[], $2::text[]) AS w (dag_id, hash)
       JOIN cairn.dag_version v ON v.dag_id = w.dag_id AND v.hash = w.hash
      WHERE d.dag_id = w.dag_id AND d.version_id IS DISTINCT FROM v.version_id
     RETURNING d.dag_id, d.version_id::text`,
    [go.map((w) => w.dagId), go.map((w) => w.hash)],
  )
  return { changed: updated.rows.map((r) => ({ dagId: r.dag_id, versionId: Number(r.version_id) })), skipped }
}

/** Marks DAGs removed (their file is gone or now declares something else), if their row is still as read. */
export async function markDagsRemoved(q: Queryable, dags: readonly { dagId: string; file: string | null }[]): Promise<string[]> {
  if (dags.length === 0) return []
  const { rows } = await q.query<{ dag_id: string }>(
    `UPDATE cairn.dag d SET removed = true, updated_at = now()
       FROM unnest($1::text[], $2::text[]) AS w (dag_id, file)
      WHERE d.dag_id = w.dag_id AND d.file IS NOT DISTINCT FROM w.file AND NOT d.removed
     RETURNING d.dag_id`,
    [dags.map((d) => d.dagId), dags.map((d) => d.file)],
  )
  return rows.map((r) => r.dag_id)
}

export interface ImportErrorRow {
  file: string
  dagId: string | null
  diagnostics: readonly Diagnostic[]
}

/** Makes cairn.import_error hold exactly `errors`; rows that are already right are not written. */
export async function replaceImportErrors(q: Queryable, errors: readonly ImportErrorRow[]): Promise<void> {
  const files = errors.map((e) => e.file)
  await q.query('DELETE FROM cairn.import_error WHERE NOT (file = ANY($1::text[]))', [files])
  if (errors.length === 0) return
  await q.query(
    `INSERT INTO cairn.import_error (file, dag_id, diagnostics)
       SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])
     ON CONFLICT (file) DO UPDATE SET dag_id = excluded.dag_id, diagnostics = excluded.diagnostics, updated_at = now()
       WHERE cairn.import_error.diagnostics IS DISTINCT FROM excluded.diagnostics OR cairn.import_error.dag_id IS DISTINCT FROM excluded.dag_id`,
    [files, errors.map((e) => e.dagId), errors.map((e) => JSON.stringify(e.diagnostics))],
  )
}
