/**
 * Feature view rows (migration 0013) written straight into the tables, as the DAG sync and
 * `features.materialize` would leave them: a definition, materialized intervals and online rows.
 */
import { randomUUID } from 'node:crypto'
import type { Db } from '../../engine/store/db.ts'

export interface SeedFeatureView {
  name: string
  /** Definition versions, oldest first (version numbers 1, 2, ...). */
  definitions: { definition: Record<string, unknown>; source: string }[]
  intervals: { definitionVersion: number; start: string; end: string; rows: number; onlineRows?: number | null; sourceDataset: string; sourceVersion: number; runId?: string; taskId?: string }[]
  /** Entities in the online store. */
  online: number
  file?: string
}

export async function seedFeatureView(db: Db, view: SeedFeatureView): Promise<void> {
  await db.tx(async (q) => {
    await q.query(`INSERT INTO cairn.feature_view (name, file, current_version, description) VALUES ($1, $2, $3, $4)`, [view.name, view.file ?? `dags/features/${view.name}.yaml`, view.definitions.length, `the ${view.name} view`])
    for (const [i, d] of view.definitions.entries()) {
      await q.query(`INSERT INTO cairn.feature_view_definition (view, version, hash, definition, source) VALUES ($1, $2, $3, $4::jsonb, $5)`, [view.name, i + 1, `hash-${i + 1}`, JSON.stringify(d.definition), d.source])
    }
    for (const m of view.intervals) {
      await q.query(
        `INSERT INTO cairn.feature_materialization (view, definition_version, interval_start, interval_end, location, row_count, source_dataset, source_version, online_rows, run_id, task_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [view.name, m.definitionVersion, m.start, m.end, `features/${view.name}/${randomUUID()}`, m.rows, m.sourceDataset, m.sourceVersion, m.onlineRows ?? null, m.runId ?? null, m.taskId ?? null],
      )
    }
    for (let i = 0; i < view.online; i++) {
      await q.query(
        `INSERT INTO cairn.feature_online (view, entity_key, entity, features, feature_timestamp, definition_version) VALUES ($1, $2, $3::jsonb, $4::jsonb, now(), $5)`,
        [view.name, JSON.stringify([`u${i}`]), JSON.stringify({ user_id: `u${i}` }), JSON.stringify({ spend_7d: i }), view.definitions.length],
      )
    }
  })
}
