/** A DAG's version history: every distinct file content the scheduler loaded, newest first. */
import type { Queryable } from './queryable.ts'

export interface DagVersionSummary {
  versionId: number
  hash: string
  createdAt: Date
  runs: number
  /** The version the scheduler runs new runs with. */
  current: boolean
}

/** Newest first; one statement, so `current` and the list come from the same moment. */
export async function listDagVersions(q: Queryable, dagId: string, limit: number): Promise<DagVersionSummary[]> {
  const { rows } = await q.query<{ version_id: string; hash: string; created_at: Date; runs: string; current: boolean }>(
    `SELECT v.version_id::text, v.hash, v.created_at,
            (SELECT count(*) FROM cairn.run r WHERE r.version_id = v.version_id)::text AS runs,
            v.version_id IS NOT DISTINCT FROM d.version_id AS current
       FROM cairn.dag_version v JOIN cairn.dag d USING (dag_id)
      WHERE v.dag_id = $1 ORDER BY v.version_id DESC LIMIT $2`,
    [dagId, limit],
  )
  return rows.map((r) => ({ versionId: Number(r.version_id), hash: r.hash, createdAt: r.created_at, runs: Number(r.runs), current: r.current }))
}

export async function getDagVersionSource(q: Queryable, dagId: string, versionId: number): Promise<{ source: string; hash: string; createdAt: Date } | undefined> {
  const { rows } = await q.query<{ source: string; hash: string; created_at: Date }>(
    'SELECT source, hash, created_at FROM cairn.dag_version WHERE dag_id = $1 AND version_id = $2',
    [dagId, versionId],
  )
  return rows[0] ? { source: rows[0].source, hash: rows[0].hash, createdAt: rows[0].created_at } : undefined
}
