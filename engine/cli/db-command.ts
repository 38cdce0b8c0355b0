/**
 * `cairn db prune --older-than 90d [--batch N] [--format json]`: retention (SPEC section 5). Deletes
 * finished runs that ended longer ago than that, with their task instances, attempts, log lines and
 * state history, in batches; queued and running runs are never touched.
 */
import { parseArgs } from 'node:util'
import { pruneFinishedRuns } from '../store/prune.ts'
import { parseDuration } from '../time/duration.ts'
import { EXIT, UsageError } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'
import { parsePositiveInt, takePositionals } from './args.ts'
import { formatOption } from './format.ts'
import { withDatabase } from './database.ts'

export const DB_HELP = `Database maintenance.
  cairn db prune --older-than AGE   deletes finished runs (success, failed, cancelled) that ended more than AGE
                                    ago (e.g. 90d, 12h, 1d12h), with their task instances, attempts, log lines
                                    and state history, in batches of --batch runs per transaction (default 500);
                                    0s is every finished run.
                                    Queued and running runs are never touched. Dataset, feature and model
                                    versions stay (their lineage then says run_pruned). Prints what was removed.
cairn.yaml \`retention: { runs_older_than: 90d }\` makes the scheduler do the same every hour.
Exit codes: 0 done (also when nothing was old enough); 2 malformed arguments (a missing or bad --older-than) or no database.`

export async function dbCommand(args: string[], io: CommandIo): Promise<ExitCode> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { 'older-than': { type: 'string' }, batch: { type: 'string' }, format: { type: 'string' } } })
  const [action] = takePositionals(positionals, ['ACTION'])
  if (action !== 'prune') throw new UsageError(`unknown action "${action}" (known: prune)`)
  const format = formatOption(values.format)
  const text = values['older-than']
  if (text === undefined) throw new UsageError('--older-than is required, e.g. --older-than 90d')
  const ageMs = parseDuration(text)
  if (ageMs === undefined) throw new UsageError(`--older-than takes a duration such as 90d, 12h or 1d12h, not "${text}"`)
  const batchSize = parsePositiveInt('--batch', values.batch, 100_000) ?? 500
  return withDatabase(io, async (db) => {
    const before = new Date(Date.now() - ageMs)
    const pruned = await pruneFinishedRuns(db, { before, batchSize })
    if (format === 'json') {
      io.stdout(
        JSON.stringify({
          older_than: text,
          before: before.toISOString(),
          runs: pruned.runs,
          task_instances: pruned.taskInstances,
          attempts: pruned.attempts,
          log_lines: pruned.logLines,
          history_rows: pruned.historyRows,
          batches: pruned.batches,
        }),
      )
    } else {
      io.stdout(
        `removed ${pruned.runs} finished run${pruned.runs === 1 ? '' : 's'} that ended before ${before.toISOString()} (older than ${text}): ` +
          `${pruned.taskInstances} task instances, ${pruned.attempts} attempts, ${pruned.logLines} log lines, ${pruned.historyRows} history rows` +
          (pruned.batches > 1 ? ` (${pruned.batches} batches)` : ''),
      )
    }
    return EXIT.ok
  })
}
