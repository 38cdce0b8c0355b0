/**
 * What runs made (dataset versions, model versions, feature materializations) outlives the runs:
 * `cairn db prune` deletes runs, never what they made, and run ids are never foreign keys. These SQL
 * fragments tell a row whose run is gone from one whose run is there, with the same rule everywhere.
 */

/**
 * `run_pruned` of a row of `table` (its name or alias) that names `table.run_id` and was made at
 * `table.madeAt`: the run is gone, or the run of that id was queued after the row was made (a
 * scheduled run's id, its DAG and logical date, may be given again once its run was pruned).
 */
export function runPrunedColumn(table: string, madeAt: string): string {
  return `(${table}.run_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cairn.run r WHERE r.run_id = ${table}.run_id AND r.queued_at <= ${table}.${madeAt})) AS run_pruned`
}

/** A condition on a row made at `madeAt` by the run whose id is the parameter `runIdParam`: made by that very run, not by an earlier, pruned run of the same id. */
export function madeByThisRun(madeAt: string, runIdParam: string): string {
  return `${madeAt} >= (SELECT r.queued_at FROM cairn.run r WHERE r.run_id = ${runIdParam})`
}
