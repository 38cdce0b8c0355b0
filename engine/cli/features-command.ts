/**
 * `cairn features get VIEW KEY [KEY...]` (online values of one entity, SPEC section 7) and
 * `cairn features list` (the feature views the DAG sync stored).
 */
import { parseArgs } from 'node:util'
import { createOnlineStore } from '../data/online-store.ts'
import { countOnlineRows } from '../store/feature-online.ts'
import { listMaterializations } from '../store/feature-materializations.ts'
import { listFeatureViews } from '../store/feature-views.ts'
import { EXIT, UsageError } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'
import { formatOption } from './format.ts'
import type { OutputFormat } from './format.ts'
import { withDatabase } from './database.ts'
import { formatTable, formatTime } from './table.ts'

export const FEATURES_HELP = `cairn features get VIEW KEY [KEY...]
  The online values of one entity: one KEY per entity column of VIEW, in the view's order (a key is
  matched against the column's type: 42 finds the integer 42, 2026-01-01T00:00:00Z the timestamp).
  A value whose feature timestamp is older than the view's ttl is shown as null.
  --format json   {"entity": {...}, "features": {...}, "feature_timestamp": ISO-8601 or null, "found", "expired"}
cairn features list
  Every feature view: current definition version, source, materialized intervals, online rows.
  --format json   an array of {"name", "definition_version", "source", "entity", "features", "removed", "file",
                  "intervals", "last_interval_end", "online_rows"}
Exit codes: 0 found; 1 unknown view, or no online row for that entity (json still printed, features null);
2 malformed arguments (wrong number of keys) or no database.`

export async function featuresCommand(args: string[], io: CommandIo): Promise<ExitCode> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { format: { type: 'string' } } })
  const format = formatOption(values.format)
  const [sub, ...rest] = positionals
  if (sub === 'get') return getCommand(rest, format, io)
  if (sub === 'list') {
    if (rest.length > 0) throw new UsageError(`features list takes no arguments (got ${rest.join(' ')})`)
    return listCommand(format, io)
  }
  throw new UsageError(sub === undefined ? 'a subcommand is required: get or list' : `unknown subcommand "${sub}" (get, list)`)
}

async function getCommand(rest: string[], format: OutputFormat, io: CommandIo): Promise<ExitCode> {
  const [view, ...keys] = rest
  if (view === undefined || keys.length === 0) throw new UsageError('usage: cairn features get VIEW KEY [KEY...]')
  return withDatabase(io, async (db) => {
    const online = createOnlineStore(db)
    // The keys are positional: learn the view's entity columns (and that it exists) first.
    const probe = await online.read(view, [])
    if (!probe.ok) {
      io.stderr(`cairn features get: ${probe.message}`)
      return EXIT.failed
    }
    if (keys.length !== probe.entityColumns.length) {
      throw new UsageError(`feature view ${view} has ${probe.entityColumns.length} entity column(s) (${probe.entityColumns.join(', ')}); got ${keys.length} key(s)`)
    }
    const entity = Object.fromEntries(probe.entityColumns.map((c, i) => [c, keys[i]]))
    const read = await online.read(view, [entity])
    if (!read.ok) {
      io.stderr(`cairn features get: ${read.message}`)
      return EXIT.failed
    }
    const value = read.values[0]!
    if (format === 'json') io.stdout(JSON.stringify(value))
    else {
      const cells = (v: unknown): string => (v === null || v === undefined ? 'null' : typeof v === 'string' ? v : JSON.stringify(v))
      const rows = [
        ...Object.entries(value.entity).map(([k, v]) => [k, cells(v), 'entity']),
        ...Object.entries(value.features).map(([k, v]) => [k, cells(v), value.expired ? 'older than ttl' : '']),
        ['feature_timestamp', value.feature_timestamp ?? 'null', ''],
      ]
      for (const line of formatTable(['NAME', 'VALUE', 'NOTE'], rows)) io.stdout(line)
    }
    if (!value.found) {
      io.stderr(`cairn features get: the online store has no row for ${JSON.stringify(value.entity)} in ${view}`)
      return EXIT.failed
    }
    return EXIT.ok
  })
}

async function listCommand(format: OutputFormat, io: CommandIo): Promise<ExitCode> {
  return withDatabase(io, async (db) => {
    const out = []
    for (const v of await listFeatureViews(db)) {
      const { rows } = await db.query<{ definition: { source: string; entity: string[]; features: { name: string }[] } }>(
        'SELECT definition FROM cairn.feature_view_definition WHERE view = $1 AND version = $2', [v.name, v.currentVersion],
      )
      const d = rows[0]!.definition
      const intervals = await listMaterializations(db, v.name, v.currentVersion)
      out.push({
        name: v.name,
        definition_version: v.currentVersion,
        source: d.source,
        entity: d.entity,
        features: d.features.map((f) => f.name),
        removed: v.removed,
        file: v.file,
        intervals: intervals.length,
        last_interval_end: intervals.at(-1)?.intervalEnd.toISOString() ?? null,
        online_rows: await countOnlineRows(db, v.name),
      })
    }
    if (format === 'json') io.stdout(JSON.stringify(out))
    else if (out.length === 0) io.stderr('cairn features list: no feature views (none of the DAG folder\'s files declares one)')
    else {
      const rows = out.map((v) => [v.name, String(v.definition_version), v.source, v.entity.join(','), String(v.features.length), String(v.intervals),
        v.last_interval_end ? formatTime(new Date(v.last_interval_end)) : '-', String(v.online_rows), v.removed ? 'removed' : ''])
      for (const line of formatTable(['VIEW', 'VERSION', 'SOURCE', 'ENTITY', 'FEATURES', 'INTERVALS', 'LAST END', 'ONLINE ROWS', 'NOTE'], rows)) io.stdout(line)
    }
    return EXIT.ok
  })
}
