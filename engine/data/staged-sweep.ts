/**
 * Folders of the datasets directory that no version will ever name: what a writer killed between staging
 * and publishing left behind (a worker SIGKILLed mid-ingest, a machine lost mid-materialization), and the
 * old rows of a re-materialized interval whose removal was cut short. Readers never see them (they find
 * files only through a version or materialization row), but they hold disk.
 *
 * A staged folder is named `<claim id>.<uuid>` when an attempt writes it (`<uuid>` for the CLI's imports,
 * and for folders written before this naming). The sweep removes a folder that
 *   - no `cairn.dataset_version` or `cairn.feature_materialization` row names, and
 *   - was written by an attempt that no longer holds its claim (no longer `running`), or, without a
 *     claim in its name, has not changed for `unclaimedAfterMs`.
 * The claims are read BEFORE the references: publishing is fenced by the claim in the publishing
 * transaction, so a folder whose attempt was not running then can only have been published already,
 * and the references read after it see that.
 */
import { readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Queryable } from '../store/queryable.ts'
import type { Producer } from './datasets.ts'

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
const STAGED_NAME = new RegExp(`^(?:(${UUID})\\.)?${UUID}$`)

/** The name of a fresh staged folder for `producer`. */
export function stagedFolderName(producer: Producer, uuid: string): string {
  return producer.kind === 'attempt' ? `${producer.claimId}.${uuid}` : uuid
}

export interface SweepOptions {
  /** @default 24 h */
  unclaimedAfterMs?: number
  now?: () => number
}

/** Removes the orphan folders under `dir`; returns them, relative to `dir`. */
export async function sweepStagedFolders(q: Queryable, dir: string, options: SweepOptions = {}): Promise<string[]> {
  const candidates = await stagedFolders(dir)
  if (candidates.length === 0) return []
  const claims = [...new Set(candidates.flatMap((c) => (c.claim ? [c.claim] : [])))]
  const { rows: held } = await q.query<{ claim_id: string }>(`SELECT claim_id::text FROM cairn.attempt WHERE claim_id = ANY($1::uuid[]) AND state = 'running'`, [claims])
  const running = new Set(held.map((r) => r.claim_id))
  const locations = candidates.map((c) => c.location)
  const { rows: named } = await q.query<{ location: string }>(
    `SELECT location FROM cairn.dataset_version WHERE location = ANY($1::text[])
     UNION SELECT location FROM cairn.feature_materialization WHERE location = ANY($1::text[])`,
    [locations],
  )
  const referenced = new Set(named.map((r) => r.location))
  const now = options.now?.() ?? Date.now()
  const unclaimedAfterMs = options.unclaimedAfterMs ?? 24 * 3_600_000
  const removed: string[] = []
  for (const c of candidates) {
    if (referenced.has(c.location)) continue
    if (c.claim ? running.has(c.claim) : now - c.mtimeMs < unclaimedAfterMs) continue
    await rm(join(dir, c.location), { recursive: true, force: true })
    removed.push(c.location)
  }
  return removed
}

interface Candidate {
  /** Relative to the datasets directory, `/`-separated, as version rows record it. */
  location: string
  claim: string | undefined
  mtimeMs: number
}

/**
 * `<dataset>/<staged>` and `_features/<view>/d<version>/<interval end>/<staged>`; other folders starting
 * with `_` (models) are not staged and never swept.
 */
async function stagedFolders(dir: string): Promise<Candidate[]> {
  const out: Candidate[] = []
  const walk = async (parts: string[], depth: number): Promise<void> => {
    for (const name of await subfolders(join(dir, ...parts))) {
      if (depth > 0) {
        await walk([...parts, name], depth - 1)
        continue
      }
      const m = STAGED_NAME.exec(name)
      if (!m) continue
      const location = [...parts, name].join('/')
      const info = await stat(join(dir, location)).catch(() => undefined)
      if (info) out.push({ location, claim: m[1], mtimeMs: info.mtimeMs })
    }
  }
  for (const top of await subfolders(dir)) {
    if (top === '_features') await walk([top], 3)
    else if (!top.startsWith('_')) await walk([top], 0)
  }
  return out
}

async function subfolders(path: string): Promise<string[]> {
  const entries = await readdir(path, { withFileTypes: true }).catch(() => [])
  return entries.filter((e) => e.isDirectory()).map((e) => e.name)
}
