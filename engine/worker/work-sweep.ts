/**
 * Attempt folders of pruned runs. Each attempt runs in `<work root>/<run id>/<task>/<attempt>`; the folder
 * outlives the attempt (its files are there to look at after a failure) and goes with its run: once
 * retention (`cairn db prune`, `retention.runs_older_than`) has deleted the run, the sweep removes the run's
 * folder. Nothing is removed while its run exists, however old: the run's retention decides.
 *
 * Only finished runs are pruned, so nothing runs in such a folder any more; still, a folder is left alone
 * until it has not changed for `graceMs`. Only names shaped like the run ids cairn makes are considered
 * (MADE_RUN_ID, beside the code that makes them), never another folder someone put there. The
 * attempt folders go as the task user (removeRunDir), never by a walk of the worker's own.
 */
import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Queryable } from '../store/queryable.ts'
import { MADE_RUN_ID } from '../store/runs.ts'
import { removeRunDir } from '../process/attempt-dir.ts'
import type { TaskUser } from '../process/task-user.ts'


export interface WorkSweepOptions {
  /** The user task processes run as (`workers.run_as`); attempt folders are removed as this user. */
  user?: TaskUser
  /** A folder that changed more recently than this is kept. @default 1 h */
  graceMs?: number
  now?: () => number
  signal?: AbortSignal
}

export interface WorkSweepResult {
  removed: string[]
  /** Folders whose removal failed, with why (for instance another worker's task user owns them). */
  failed: { folder: string; message: string }[]
}

/** Removes the run folders under `workRoot` whose run no longer exists. */
export async function sweepPrunedRunFolders(q: Queryable, workRoot: string, options: WorkSweepOptions = {}): Promise<WorkSweepResult> {
  const result: WorkSweepResult = { removed: [], failed: [] }
  let names: string[]
  try {
    names = (await readdir(workRoot, { withFileTypes: true })).filter((entry) => entry.isDirectory() && MADE_RUN_ID.test(entry.name)).map((entry) => entry.name)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return result
    throw error
  }
  if (names.length === 0) return result
  const { rows } = await q.query<{ run_id: string }>(`SELECT run_id FROM cairn.run WHERE run_id = ANY($1::text[])`, [names])
  const existing = new Set(rows.map((row) => row.run_id))
  const now = options.now?.() ?? Date.now()
  const graceMs = options.graceMs ?? 3_600_000
  const signal = options.signal ?? new AbortController().signal
  for (const name of names) {
    if (existing.has(name)) continue
    const folder = join(workRoot, name)
    const changed = await lstat(folder).then((s) => s.mtimeMs, () => undefined)
    if (changed === undefined || now - changed < graceMs) continue
    const removed = await removeRunDir(folder, options.user, signal)
    if (removed.ok) result.removed.push(name)
    else if (removed.aborted) break
    // Another worker sharing this root removed it meanwhile.
    else if (await lstat(folder).then(() => true, () => false)) result.failed.push({ folder: name, message: removed.message })
  }
  return result
}
