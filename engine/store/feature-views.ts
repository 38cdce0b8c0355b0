/**
 * Feature view definitions (migration 0013): what the DAG sync writes and what workers, the CLI and
 * the web pages read. A view's row names its file and current definition version; each distinct
 * definition it has had is a numbered row of cairn.feature_view_definition, kept after it changes.
 */
import type { FeatureViewDefinition } from '../data/feature-definition.ts'
import type { Queryable } from './queryable.ts'

export interface StoredFeatureView {
  name: string
  file: string | null
  removed: boolean
  /** Hash of the current definition. */
  hash: string
  description: string | null
  owner: string | null
  tags: string[]
}

export async function readStoredFeatureViews(q: Queryable): Promise<Map<string, StoredFeatureView>> {
  const { rows } = await q.query<StoredFeatureView>(
    `SELECT v.name, v.file, v.removed, d.hash, v.description, v.owner, v.tags FROM cairn.feature_view v
       JOIN cairn.feature_view_definition d ON d.view = v.name AND d.version = v.current_version`,
  )
  return new Map(rows.map((r) => [r.name, r]))
}

export interface FeatureViewWrite {
  name: string
  file: string
  hash: string
  definitionJson: string
  source: string
  description: string | null
  owner: string | null
  tags: string[]
}

/**
 * Saves feature views as their files now define them, in the caller's transaction: a new view gets
 * definition version 1, a changed definition the next version, the same definition only its file,
 * descriptive fields and removed flag. Returns the views whose definition version changed.
 */
export async function saveFeatureViews(q: Queryable, writes: readonly FeatureViewWrite[]): Promise<{ name: string; version: number }[]> {
  const changed: { name: string; version: number }[] = []
  for (const w of [...writes].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const { rows } = await q.query<{ current_version: number; hash: string }>(
      `SELECT v.current_version, d.hash FROM cairn.feature_view v
         JOIN cairn.feature_view_definition d ON d.view = v.name AND d.version = v.current_version
        WHERE v.name = $1 FOR UPDATE OF v`,
      [w.name],
    )
    const row = rows[0]
    if (!row) {
      await q.query(
        `INSERT INTO cairn.feature_view (name, file, current_version, description, owner, tags) VALUES ($1, $2, 1, $3, $4, $5::jsonb)`,
        [w.name, w.file, w.description, w.owner, JSON.stringify(w.tags)],
      )
      await q.query(`INSERT INTO cairn.feature_view_definition (view, version, hash, definition, source) VALUES ($1, 1, $2, $3::jsonb, $4)`, [w.name, w.hash, w.definitionJson, w.source])
      changed.push({ name: w.name, version: 1 })
      continue
    }
    let version = row.current_version
    if (row.hash !== w.hash) {
      const next = await q.query<{ version: number }>(`SELECT coalesce(max(version), 0) + 1 AS version FROM cairn.feature_view_definition WHERE view = $1`, [w.name])
      version = next.rows[0]!.version
      await q.query(`INSERT INTO cairn.feature_view_definition (view, version, hash, definition, source) VALUES ($1, $2, $3, $4::jsonb, $5)`, [w.name, version, w.hash, w.definitionJson, w.source])
      changed.push({ name: w.name, version })
    }
    await q.query(
      `UPDATE cairn.feature_view SET file = $2, current_version = $3, removed = false, description = $4, owner = $5, tags = $6::jsonb, updated_at = now()
        WHERE name = $1 AND (file IS DISTINCT FROM $2 OR current_version <> $3 OR removed OR description IS DISTINCT FROM $4 OR owner IS DISTINCT FROM $5 OR tags <> $6::jsonb)`,
      [w.name, w.file, version, w.description, w.owner, JSON.stringify(w.tags)],
    )
  }
  return changed
}

/** Marks views removed (their file is gone or declares something else) if their row still names that file. */
export async function markFeatureViewsRemoved(q: Queryable, views: readonly { name: string; file: string | null }[]): Promise<string[]> {
  if (views.length === 0) return []
  const { rows } = await q.query<{ name: string }>(
    `UPDATE cairn.feature_view v SET removed = true, updated_at = now()
       FROM unnest($1::text[], $2::text[]) AS w (name, file)
      WHERE v.name = w.name AND v.file IS NOT DISTINCT FROM w.file AND NOT v.removed
     RETURNING v.name`,
    [views.map((v) => v.name), views.map((v) => v.file)],
  )
  return rows.map((r) => r.name)
}

export interface FeatureViewRow {
  name: string
  file: string | null
  removed: boolean
  currentVersion: number
  description: string | null
  owner: string | null
  tags: string[]
  createdAt: Date
  updatedAt: Date
}

export interface FeatureViewDefinitionRow {
  view: string
  version: number
  hash: string
  definition: FeatureViewDefinition
  source: string
  createdAt: Date
}

interface RawView {
  name: string
  file: string | null
  removed: boolean
  current_version: number
  description: string | null
  owner: string | null
  tags: string[]
  created_at: Date
  updated_at: Date
}

const toView = (r: RawView): FeatureViewRow => ({
  name: r.name,
  file: r.file,
  removed: r.removed,
  currentVersion: r.current_version,
  description: r.description,
  owner: r.owner,
  tags: r.tags,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
})

const VIEW_COLUMNS = 'name, file, removed, current_version, description, owner, tags, created_at, updated_at'

/** Every feature view (removed ones included, flagged), by name. */
export async function listFeatureViews(q: Queryable): Promise<FeatureViewRow[]> {
  const { rows } = await q.query<RawView>(`SELECT ${VIEW_COLUMNS} FROM cairn.feature_view ORDER BY name`)
  return rows.map(toView)
}

export async function readFeatureView(q: Queryable, name: string): Promise<FeatureViewRow | undefined> {
  const { rows } = await q.query<RawView>(`SELECT ${VIEW_COLUMNS} FROM cairn.feature_view WHERE name = $1`, [name])
  return rows[0] && toView(rows[0])
}

interface RawDefinition {
  view: string
  version: number
  hash: string
  definition: FeatureViewDefinition
  source: string
  created_at: Date
}

const toDefinition = (r: RawDefinition): FeatureViewDefinitionRow => ({ view: r.view, version: r.version, hash: r.hash, definition: r.definition, source: r.source, createdAt: r.created_at })

/** One definition version of a view; without `version`, the current one. */
export async function readFeatureViewDefinition(q: Queryable, view: string, version?: number): Promise<FeatureViewDefinitionRow | undefined> {
  const { rows } = version === undefined
    ? await q.query<RawDefinition>(
      `SELECT d.view, d.version, d.hash, d.definition, d.source, d.created_at FROM cairn.feature_view v
         JOIN cairn.feature_view_definition d ON d.view = v.name AND d.version = v.current_version WHERE v.name = $1`,
      [view],
    )
    : await q.query<RawDefinition>(`SELECT view, version, hash, definition, source, created_at FROM cairn.feature_view_definition WHERE view = $1 AND version = $2`, [view, version])
  return rows[0] && toDefinition(rows[0])
}

/** Every definition version of a view, newest first. */
export async function listFeatureViewDefinitions(q: Queryable, view: string): Promise<FeatureViewDefinitionRow[]> {
  const { rows } = await q.query<RawDefinition>(`SELECT view, version, hash, definition, source, created_at FROM cairn.feature_view_definition WHERE view = $1 ORDER BY version DESC`, [view])
  return rows.map(toDefinition)
}
