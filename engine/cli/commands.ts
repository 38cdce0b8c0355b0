/** The registry of CLI commands. */
import type { CommandIo, ExitCode } from './io.ts'
import { EXIT } from './io.ts'
import { validateCommand } from './validate-command.ts'
import { schedulerCommand, upCommand, webCommand, workerCommand } from './process-commands.ts'
import { TOKENS_HELP, USERS_HELP, tokensCommand, usersCommand } from './auth-commands.ts'
import { withHelp } from './help.ts'
import { TRIGGER_HELP, triggerCommand } from './trigger-command.ts'
import { BACKFILL_HELP, backfillCommand } from './backfill-command.ts'
import { DAGS_HELP, RUNS_HELP, TASKS_HELP, dagsCommand, runsCommand, tasksCommand } from './runs-command.ts'
import { LOGS_HELP, logsCommand } from './logs-command.ts'
import { DB_HELP, dbCommand } from './db-command.ts'
import { CANCEL_HELP, CLEAR_HELP, PAUSE_HELP, UNPAUSE_HELP, cancelCommand, clearCommand, pauseCommand, unpauseCommand } from './control-commands.ts'

export interface Command {
  summary: string
  usage: string
  run(args: string[], io: CommandIo): Promise<ExitCode>
}

/** Commands of SPEC section 5 that the engine does not provide yet say so plainly instead of pretending. */
function notYet(name: string, exitCode: ExitCode = EXIT.usage): Command['run'] {
  return async (_args, io) => {
    io.stderr(`cairn ${name}: the engine is not built yet in this version; only \`cairn validate\` works so far.`)
    return exitCode
  }
}

export const COMMANDS: Readonly<Record<string, Command>> = {
  validate: { summary: 'validate DAG files and folders (default: the DAG folder)', usage: 'cairn validate [PATH...] [--format json] [--config FILE]', run: validateCommand },
  up: { summary: 'run everything in one process: Postgres, scheduler, workers, web', usage: 'cairn up [--slots N] [--grace S] [--heartbeat S] [--lost-after S] [--port P]', run: upCommand },
  scheduler: { summary: 'run the scheduler alone (many machines, one Postgres)', usage: 'cairn scheduler [--lost-after S]', run: schedulerCommand },
  worker: { summary: 'run a worker alone', usage: 'cairn worker [--slots N] [--grace S] [--heartbeat S]', run: workerCommand },
  web: { summary: 'run the web server (API, /healthz, /metrics) alone', usage: 'cairn web [--port P]', run: webCommand },
  trigger: described('start a run; with --wait, exit 0 only when it succeeds', 'cairn trigger DAG [--param k=v]... [--logical-date D] [--wait] [--format json]', TRIGGER_HELP, triggerCommand),
  backfill: described('create the runs of every interval from D to D', 'cairn backfill DAG --from D --to D [--param k=v]... [--format json]', BACKFILL_HELP, backfillCommand),
  dags: described('list DAGs: paused, schedule, file, errors', 'cairn dags [--format json]', DAGS_HELP, dagsCommand),
  runs: described('list the runs of a DAG, newest first', 'cairn runs DAG [--limit N] [--state S] [--format json]', RUNS_HELP, runsCommand),
  tasks: described('list the task instances of a run', 'cairn tasks RUN_ID [--format json]', TASKS_HELP, tasksCommand),
  logs: described("print (or follow) a task's log lines", 'cairn logs RUN_ID TASK [--attempt N] [--follow] [--format json]', LOGS_HELP, logsCommand),
  cancel: described('cancel a queued or running run', 'cairn cancel RUN_ID', CANCEL_HELP, cancelCommand),
  clear: described('run a finished run (or one task and its downstream) again', 'cairn clear RUN_ID [TASK]', CLEAR_HELP, clearCommand),
  pause: described("stop a DAG's schedule", 'cairn pause DAG', PAUSE_HELP, pauseCommand),
  unpause: described("resume a DAG's schedule", 'cairn unpause DAG', UNPAUSE_HELP, unpauseCommand),
  users: described('create, list, disable or enable web users', 'cairn users create NAME --role R [--password-stdin] | list | disable NAME | enable NAME', USERS_HELP, (args, io) => usersCommand(args, io)),
  tokens: described('create (printed once, last line), list or revoke API tokens', 'cairn tokens create NAME --role R [--expires 90d] [--owner U] | list | revoke NAME', TOKENS_HELP, tokensCommand),
  db: described('delete finished runs (attempts, logs, history) older than AGE, in batches', 'cairn db prune --older-than AGE [--batch N] [--format json]', DB_HELP, dbCommand),
}

/** A command whose `--help` explains what it does and what its exit codes mean. */
function described(summary: string, usage: string, help: string, run: Command['run']): Command {
  return { summary, usage, run: withHelp(usage, help, run) }
}

export function usage(): string {
  const width = Math.max(...Object.values(COMMANDS).map((c) => c.usage.length))
  const lines = Object.values(COMMANDS).map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`)
  return ['usage: cairn <command> [options]', '', ...lines, '', 'Exit codes: 0 ok, 1 the thing checked failed, 2 usage error or cannot connect.'].join('\n')
}
