/** Pool sizes come from cairn.yaml; the database holds them so every scheduler sees the same limits. */
import type { CairnConfig } from '../config/load-config.ts'
import type { Queryable } from '../store/queryable.ts'

export async function syncPools(q: Queryable, config: Pick<CairnConfig, 'pools'>): Promise<void> {
  const names: string[] = []
  const slots: (number | null)[] = []
  for (const [name, pool] of Object.entries(config.pools ?? {})) {
    names.push(name)
    slots.push(pool?.slots ?? null)
  }
  await q.query('DELETE FROM cairn.pool WHERE NOT (name = ANY($1::text[]))', [names])
  await q.query(
    `INSERT INTO cairn.pool (name, slots) SELECT * FROM unnest($1::text[], $2::int[]) ON CONFLICT (name) DO UPDATE SET slots = excluded.slots`,
    [names, slots],
  )
}
