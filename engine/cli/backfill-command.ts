/**
 * `cairn backfill DAG --from D --to D [--param k=v]... [--format json]`
 *
 * Creates one queued `backfill` run for every data interval whose start lies in [from, to] (and
 * within the DAG's start_date/end_date), skipping logical dates that already have a run. The
 * schedulers start them oldest first within max_active_runs, as they do any queued run.
 */
import { parseArgs } from 'node:util'
import type { DagSpec } from '../dag/dag-model.ts'
import { resolveRunParams } from '../dag/run-params.ts'
import { getDag, getDagVersion } from '../store/dags.ts'
import { createRun } from '../store/runs.ts'
import { parseDagDate } from '../time/dates.ts'
import { intervalsFrom } from '../time/intervals.ts'
import type { Interval } from '../time/intervals.ts'
import { parseSchedule } from '../time/schedule.ts'
import { EXIT, UsageError } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'
import { formatOption } from './format.ts'
import { parseParamArgs, takePositionals } from './args.ts'
import { withDatabase } from './database.ts'

/** More runs than this in one command is almost certainly a typo in --from or --to. */
const MAX_BACKFILL_RUNS = 10_000
/** Runs created per transaction: each commit makes progress visible and keeps locks short. */
const BATCH = 500

export const BACKFILL_HELP = `Creates the runs of every data interval of DAG whose start is in [--from, --to] (dates in the DAG's
time zone unless they carry an offset), at most ${MAX_BACKFILL_RUNS} at once. Logical dates that already have a run are
skipped, so running the same backfill twice creates nothing the second time. The runs start oldest first within max_active_runs.
  --param NAME=VALUE   a run parameter for every run, repeatable (default: the DAG's defaults)
Exit codes: 0 done (also when every date already had a run); 1 unknown DAG, a DAG without a schedule,
invalid params or more than ${MAX_BACKFILL_RUNS} intervals (nothing is created); 2 malformed arguments or no database.`

export async function backfillCommand(args: string[], io: CommandIo): Promise<ExitCode> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { from: { type: 'string' }, to: { type: 'string' }, param: { type: 'string', multiple: true }, format: { type: 'string' } },
  })
  const [dagId] = takePositionals(positionals, ['DAG'])
  if (values.from === undefined || values.to === undefined) throw new UsageError('--from and --to are required')
  const format = formatOption(values.format)
  const given = parseParamArgs(values.param)
  const fail = (message: string): ExitCode => {
    io.stderr(`cairn backfill: ${message}`)
    return EXIT.failed
  }

  return withDatabase(io, async (db) => {
    const dag = await getDag(db, dagId!)
    if (!dag || dag.versionId === null || dag.removed) return fail(`no DAG "${dagId}"`)
    const versionId = dag.versionId
    const spec = await getDagVersion(db, versionId)
    const from = readDate('--from', values.from!, spec.timezone)
    const to = readDate('--to', values.to!, spec.timezone)
    if (from.getTime() > to.getTime()) throw new UsageError(`--from ${values.from} is after --to ${values.to}`)
    if (spec.schedule === undefined) return fail(`DAG "${spec.id}" has no schedule, so it has no data intervals; use \`cairn trigger\``)
    const schedule = parseSchedule(spec.schedule, spec.timezone)
    if (!schedule.ok) return fail(`DAG "${spec.id}" has an invalid schedule: ${schedule.message}`)
    const params = resolveRunParams(spec.params, given)
    if (!params.ok) return fail(params.errors.join('; '))

    const intervals = collectIntervals(spec, schedule.schedule, from, to)
    if (intervals === undefined) return fail(`more than ${MAX_BACKFILL_RUNS} intervals between ${from.toISOString()} and ${to.toISOString()}; backfill a shorter range at a time`)

    const created: string[] = []
    for (let i = 0; i < intervals.length; i += BATCH) {
      const batch = intervals.slice(i, i + BATCH)
      const ids = await db.tx(async (q) => {
        const out: string[] = []
        for (const interval of batch) {
          const run = await createRun(q, { dag: spec, versionId, runType: 'backfill', logicalDate: interval.start, dataIntervalStart: interval.start, dataIntervalEnd: interval.end, params: params.values })
          if (run) out.push(run.runId)
        }
        if (out.length > 0) await q.query('SELECT pg_notify($1, $2)', ['cairn_wake', spec.id])
        return out
      })
      created.push(...ids)
    }
    const skipped = intervals.length - created.length
    if (format === 'json') io.stdout(JSON.stringify({ dag_id: spec.id, created: created.length, skipped, run_ids: created }))
    else {
      for (const id of created) io.stdout(id)
      io.stderr(`cairn backfill: ${created.length} run${created.length === 1 ? '' : 's'} created, ${skipped} skipped (a run already exists for that logical date)${intervals.length === 0 ? '; no interval of the schedule starts in that range' : ''}`)
    }
    return EXIT.ok
  })
}

function readDate(option: string, text: string, timezone: string): Date {
  const date = parseDagDate(text, timezone)
  if (!date) throw new UsageError(`${option} "${text}" is not a date (use 2026-01-01 or 2026-01-01T02:00:00Z)`)
  return date
}

/** The intervals in range, or undefined when there are more than MAX_BACKFILL_RUNS (found lazily, so a huge range costs nothing). */
function collectIntervals(spec: DagSpec, schedule: Parameters<typeof intervalsFrom>[0], from: Date, to: Date): Interval[] | undefined {
  const startDate = spec.startDate ? parseDagDate(spec.startDate, spec.timezone) : undefined
  const endDate = spec.endDate ? parseDagDate(spec.endDate, spec.timezone) : undefined
  const last = new Date(Math.min(to.getTime(), endDate?.getTime() ?? Infinity))
  const found: Interval[] = []
  for (const interval of intervalsFrom(schedule, spec.timezone, from, { startDate, endDate: last })) {
    if (found.length === MAX_BACKFILL_RUNS) return undefined
    found.push(interval)
  }
  return found
}
