/**
 * Data-aware scheduling (`schedule: { datasets: [...] }`): per DAG and listed dataset, the version its
 * last dataset-triggered run was created for. A DAG is due when every listed dataset's latest published
 * version is newer than its cursor; creating the run moves every cursor to those versions in the same
 * transaction, so updates that arrive while a run waits are coalesced into the next one (Airflow's
 * dataset events behave the same way).
 */
import type { Queryable } from './queryable.ts'

export interface DatasetWait {
  dataset: string
  /** The version the last run was created for (0: none yet). */
  consumed: number
  /** The newest published version (0: never published). */
  latest: number
}

/**
 * The cursor of each listed dataset, starting new ones at the dataset's current version (versions
 * published before the DAG listed a dataset never trigger it). Cursors of datasets no longer listed are
 * dropped.
 */
export async function datasetWaits(q: Queryable, dagId: string, datasets: readonly string[]): Promise<DatasetWait[]> {
  await q.query(
    `INSERT INTO cairn.dag_dataset_cursor (dag_id, dataset, version)
     SELECT $1, n.name, coalesce(d.latest_version, 0) FROM unnest($2::text[]) AS n(name) LEFT JOIN cairn.dataset d ON d.name = n.name
     ON CONFLICT (dag_id, dataset) DO NOTHING`,
    [dagId, datasets],
  )
  await q.query(`DELETE FROM cairn.dag_dataset_cursor WHERE dag_id = $1 AND NOT (dataset = ANY($2::text[]))`, [dagId, datasets])
  const { rows } = await q.query<{ dataset: string; consumed: number; latest: number }>(
    `SELECT c.dataset, c.version AS consumed, coalesce(d.latest_version, 0) AS latest
       FROM cairn.dag_dataset_cursor c LEFT JOIN cairn.dataset d ON d.name = c.dataset
      WHERE c.dag_id = $1`,
    [dagId],
  )
  const byName = new Map(rows.map((r) => [r.dataset, r]))
  return datasets.map((name) => byName.get(name) ?? { dataset: name, consumed: 0, latest: 0 })
}

/**
 * Read-only and cheap, for every scheduler pass: whether the DAG may be due (every listed dataset newer
 * than its cursor) or has a listed dataset without a cursor yet. Only then does the scheduler take the
 * DAG's row lock and decide with datasetWaits, so an idle data-aware DAG costs one query, no transaction.
 */
export async function datasetScheduleMaybeDue(q: Queryable, dagId: string, datasets: readonly string[]): Promise<boolean> {
  const { rows } = await q.query<{ uninitialized: boolean; due: boolean }>(
    `SELECT bool_or(c.version IS NULL) AS uninitialized, bool_and(coalesce(d.latest_version, 0) > coalesce(c.version, 0)) AS due
       FROM unnest($2::text[]) AS n(name)
       LEFT JOIN cairn.dag_dataset_cursor c ON c.dag_id = $1 AND c.dataset = n.name
       LEFT JOIN cairn.dataset d ON d.name = n.name`,
    [dagId, datasets],
  )
  return rows[0]?.uninitialized === true || rows[0]?.due === true
}

/** Read-only: the listed datasets without a new version for the DAG yet (for the page and the API). */
export async function datasetsWaitedFor(q: Queryable, dagId: string, datasets: readonly string[]): Promise<string[]> {
  const { rows } = await q.query<{ dataset: string }>(
    `SELECT n.name AS dataset FROM unnest($2::text[]) AS n(name)
       LEFT JOIN cairn.dag_dataset_cursor c ON c.dag_id = $1 AND c.dataset = n.name
       LEFT JOIN cairn.dataset d ON d.name = n.name
      WHERE coalesce(d.latest_version, 0) <= coalesce(c.version, d.latest_version, 0)`,
    [dagId, datasets],
  )
  const waiting = new Set(rows.map((r) => r.dataset))
  return datasets.filter((name) => waiting.has(name))
}

export async function consumeDatasetVersions(q: Queryable, dagId: string, waits: readonly DatasetWait[]): Promise<void> {
  await q.query(
    `UPDATE cairn.dag_dataset_cursor c SET version = w.version FROM unnest($2::text[], $3::int[]) AS w(dataset, version)
      WHERE c.dag_id = $1 AND c.dataset = w.dataset`,
    [dagId, waits.map((w) => w.dataset), waits.map((w) => w.latest)],
  )
}
