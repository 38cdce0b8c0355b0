/** Pool sizes come from cairn.yaml; the database holds them so every scheduler sees the same limits. */
import type { DeploymentConfig } from '../config/load-config.ts'
import type { Queryable } from '../store/queryable.ts'

export async function syncPools(q: Queryable, config: DeploymentConfig): Promise<void> {
  const pools = config.pools !== null && typeof config.pools === 'object' && !Array.isArray(config.pools) ? config.pools : {}
  const names: string[] = []
  const slots: (number | null)[] = []
  for (const [name, value] of Object.entries(pools)) {
    const size = value !== null && typeof value === 'object' && !Array.isArray(value) ? value.slots : undefined
    names.push(name)
    slots.push(typeof size === 'number' ? size : null)
  }
  await q.query('DELETE FROM cairn.pool WHERE NOT (name = ANY($1::text[]))', [names])
  await q.query(
    `INSERT INTO cairn.pool (name, slots) SELECT * FROM unnest($1::text[], $2::int[]) ON CONFLICT (name) DO UPDATE SET slots = excluded.slots`,
    [names, slots],
  )
}
