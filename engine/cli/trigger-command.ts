/**
 * `cairn trigger DAG [--param k=v]... [--logical-date D] [--wait] [--format json]`
 *
 * Creates a queued manual run and wakes the schedulers, which start it. stdout holds only the run id
 * (text) or `{"run_id","state"}` (json), so `RUN=$(cairn trigger x --wait)` works; progress and the
 * final state go to stderr. Exit codes: 2 for a malformed command line (`--param` without `=`, an
 * unreadable date) or no database; 1 when the engine refuses (unknown DAG, params that do not fit the
 * DAG's definitions, a run already exists for that logical date) — nothing is created then — and,
 * with `--wait`, when the run ends failed or cancelled.
 */
import { parseArgs } from 'node:util'
import type { Db } from '../store/db.ts'
import { triggerRun } from '../store/control.ts'
import { getDag, getDagVersion } from '../store/dags.ts'
import { listTaskInstances } from '../store/runs.ts'
import type { RunRow } from '../store/runs.ts'
import { parseDagDate } from '../time/dates.ts'
import { EXIT, UsageError } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'
import { formatOption } from './format.ts'
import { parseParamArgs, takePositionals } from './args.ts'
import { withDatabase } from './database.ts'
import { triggerJson } from '../json-shapes.ts'
import { oneLine } from './table.ts'
import { waitForRunEnd } from './wake.ts'

export const TRIGGER_HELP = `Starts a run of DAG and prints its id (with --format json: {"run_id","state"}).
  --param NAME=VALUE   a run parameter, repeatable; read as the type the DAG declares (number, boolean, JSON for arrays/objects)
  --logical-date D     the run's logical date (2026-01-01 or an ISO datetime, in the DAG's time zone unless it has an offset); default now
  --wait               wait for the run to end; the final state goes to stderr
Exit codes: 0 created (with --wait: the run succeeded); 1 unknown DAG, invalid params or a run
already exists for that logical date (nothing is created), or with --wait the run failed or was
cancelled; 2 malformed arguments or no database.`

export async function triggerCommand(args: string[], io: CommandIo): Promise<ExitCode> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { param: { type: 'string', multiple: true }, 'logical-date': { type: 'string' }, wait: { type: 'boolean', default: false }, format: { type: 'string' } },
  })
  const [dagId] = takePositionals(positionals, ['DAG'])
  const format = formatOption(values.format)
  const given = parseParamArgs(values.param)
  const dateText = values['logical-date']

  return withDatabase(io, async (db) => {
    const result = await db.tx(async (q) => {
      let logicalDate: Date | undefined
      if (dateText !== undefined) {
        const dag = await getDag(q, dagId!)
        const timezone = dag?.versionId ? (await getDagVersion(q, dag.versionId)).timezone : 'UTC'
        logicalDate = parseDagDate(dateText, timezone)
        if (!logicalDate) throw new UsageError(`--logical-date "${dateText}" is not a date (use 2026-01-01 or 2026-01-01T02:00:00Z)`)
      }
      return triggerRun(q, { now: () => new Date() }, { dagId: dagId!, params: given, ...(logicalDate ? { logicalDate } : {}) })
    })
    if (!result.ok) {
      io.stderr(`cairn trigger: ${result.message}`)
      return EXIT.failed
    }
    const run = result.run
    if (!values.wait) {
      io.stdout(format === 'json' ? JSON.stringify(triggerJson(run)) : run.runId)
      return EXIT.ok
    }
    io.stderr(`cairn trigger: run ${run.runId} queued; waiting for it to end`)
    const ended = await waitForRunEnd(db, run.runId, run.dagId)
    await reportEnd(db, io, ended)
    io.stdout(format === 'json' ? JSON.stringify(triggerJson(ended)) : ended.runId)
    return ended.state === 'success' ? EXIT.ok : EXIT.failed
  })
}

/** The final state, and for a run that did not succeed the task instances that explain why. */
async function reportEnd(db: Db, io: CommandIo, run: RunRow): Promise<void> {
  io.stderr(`cairn trigger: run ${run.runId} ended ${run.state}`)
  if (run.state === 'success') return
  for (const ti of await listTaskInstances(db, run.runId)) {
    if (ti.state === 'failed' || ti.state === 'cancelled') io.stderr(`  ${ti.taskId}: ${ti.state}${ti.message ? ` (${oneLine(ti.message, 200)})` : ''}`)
  }
}
