/**
 * What `cairn help`, `cairn help COMMAND` and `cairn COMMAND --help` print. This module imports
 * nothing heavy on purpose: the registry (commands.ts) loads a command's code only when it runs, so
 * the usage of every command has to be known without loading any of them.
 */
import { closest } from '../dag/suggest.ts'

export interface CommandUsage {
  /** One line for `cairn help`. */
  summary: string
  /** The synopsis, one line per form; the first line starts with `cairn COMMAND`. */
  usage: string
  /** What `cairn COMMAND --help` adds below the usage: options, behaviour, exit codes. */
  help?: string
}

const LOG_FORMAT = `  --log-format F   the engine's own log lines on stderr: pretty (time, level, message, key fields) or
                   json (one pino object per line); default pretty on a terminal, json otherwise`

export const USAGE = {
  validate: {
    summary: 'validate DAG files and folders (default: the DAG folder)',
    usage: 'cairn validate [PATH...] [--format json] [--config FILE]',
    help: `Checks every *.yaml/*.yml file under the given files and folders (default: CAIRN_DAGS, else dags/)
and cairn.yaml: YAML limits, the JSON Schemas, dependencies and cycles, cron, time zones, templates,
and the pools and clusters cairn.yaml defines. Every problem is one line on stdout,
FILE:LINE:COL: error CODE: message; a summary goes to stderr.
  --format json   an array of {file, line, column, path, code, message, severity} on stdout
  --config FILE   the cairn.yaml to check against (default: CAIRN_CONFIG, else cairn.yaml)
Exit codes: 0 no errors (warnings allowed); 1 at least one error; 2 malformed arguments or a path that does not exist.`,
  },
  up: {
    summary: 'run everything in one process: Postgres, scheduler, workers, web, model server',
    usage: 'cairn up [--slots N] [--queue NAME]... [--grace S] [--heartbeat S] [--lost-after S] [--port P] [--serve-port P] [--log-format pretty|json]',
    help: `Runs the whole engine in one process until Ctrl-C (SIGINT) or SIGTERM: Postgres (embedded, with its data
under CAIRN_HOME, unless DATABASE_URL is set), the migrations, the scheduler, a worker, the web server and
the model server.
  --slots N        task instances the worker runs at once (default: workers.concurrency of cairn.yaml, else 4)
  --queue NAME     a queue the worker takes tasks from; repeatable (default: workers.queues of cairn.yaml, else default)
  --grace S        seconds running tasks get to finish when stopping (default 30)
  --heartbeat S    seconds between the worker's heartbeats (default 2)
  --lost-after S   seconds without a heartbeat after which an attempt is lost (default 30)
  --port P         web port (default: CAIRN_PORT, else web.port of cairn.yaml, else 8080; 0: any free port,
                   for the model server too unless --serve-port says otherwise)
  --serve-port P   model server port (default: CAIRN_SERVE_PORT, else serve.port of cairn.yaml, else 8081; 0: any free port)
${LOG_FORMAT}
Exit codes: 0 stopped cleanly; 1 cairn.yaml is invalid; 2 malformed arguments, the database cannot be reached or a port is taken.`,
  },
  scheduler: {
    summary: 'run the scheduler alone (many machines, one Postgres)',
    usage: 'cairn scheduler [--lost-after S] [--log-format pretty|json]',
    help: `Runs only the scheduler, on the Postgres of DATABASE_URL (migrating it if needed): it loads the DAG folder,
creates scheduled runs and decides which task instances are ready. Several schedulers may share one database.
  --lost-after S   seconds without a heartbeat after which an attempt is lost (default 30)
${LOG_FORMAT}
Exit codes: 0 stopped cleanly; 1 cairn.yaml is invalid; 2 malformed arguments or the database cannot be reached.`,
  },
  worker: {
    summary: 'run a worker alone',
    usage: 'cairn worker [--slots N] [--queue NAME]... [--grace S] [--heartbeat S] [--log-format pretty|json]',
    help: `Runs only a worker on the Postgres of DATABASE_URL: it claims queued task instances and runs them.
  --slots N        task instances run at once (default: workers.concurrency of cairn.yaml, else 4)
  --queue NAME     a queue to take tasks from; repeatable (default: workers.queues of cairn.yaml, else default)
  --grace S        seconds running tasks get to finish when stopping (default 30)
  --heartbeat S    seconds between heartbeats (default 2)
${LOG_FORMAT}
Exit codes: 0 stopped cleanly; 1 cairn.yaml is invalid; 2 malformed arguments or the database cannot be reached.`,
  },
  web: {
    summary: 'run the web server (API, /healthz, /metrics) alone',
    usage: 'cairn web [--port P] [--log-format pretty|json]',
    help: `Runs only the web server (page, API under /api/v1, /healthz, /metrics) on the Postgres of DATABASE_URL.
  --port P         port (default: CAIRN_PORT, else web.port of cairn.yaml, else 8080; 0: any free port)
${LOG_FORMAT}
Exit codes: 0 stopped cleanly; 1 cairn.yaml is invalid; 2 malformed arguments, the database cannot be reached or the port is taken.`,
  },
  serve: {
    summary: 'run the model server alone (Open Inference Protocol v2 over HTTP)',
    usage: 'cairn serve [--port P] [--log-format pretty|json]',
    help: `Runs only the model server on the Postgres of DATABASE_URL: it serves the production and canary versions
of every registered model over the Open Inference Protocol (KServe v2 REST, under /v2), follows the model
registry (stage and traffic changes apply within a second), and reports per-version figures (/metrics, and
the database for rollouts). Inference needs an API token of any role unless cairn.yaml says serve: { auth: none }.
  --port P         port (default: CAIRN_SERVE_PORT, else serve.port of cairn.yaml, else 8081; 0: any free port)
${LOG_FORMAT}
Exit codes: 0 stopped cleanly; 1 cairn.yaml is invalid; 2 malformed arguments, the database cannot be reached or the port is taken.`,
  },
  trigger: { summary: 'start a run; with --wait, exit 0 only when it succeeds', usage: 'cairn trigger DAG [--param k=v]... [--logical-date D] [--wait] [--format json]' },
  backfill: { summary: 'create the runs of every interval from D to D', usage: 'cairn backfill DAG --from D --to D [--param k=v]... [--format json]' },
  dags: { summary: 'list DAGs: paused, schedule, file, errors', usage: 'cairn dags [--format json]' },
  runs: { summary: 'list the runs of a DAG, newest first', usage: 'cairn runs DAG [--limit N] [--state S] [--format json]' },
  tasks: { summary: 'list the task instances of a run', usage: 'cairn tasks RUN_ID [--format json]' },
  logs: { summary: "print (or follow) a task's log lines", usage: 'cairn logs RUN_ID TASK [--attempt N] [--tail N|all] [--follow] [--format json]' },
  cancel: { summary: 'cancel a queued or running run', usage: 'cairn cancel RUN_ID' },
  clear: { summary: 'run a finished run (or one task and its downstream) again', usage: 'cairn clear RUN_ID [TASK]' },
  pause: { summary: "stop a DAG's schedule", usage: 'cairn pause DAG' },
  unpause: { summary: "resume a DAG's schedule", usage: 'cairn unpause DAG' },
  users: {
    summary: 'create, list, disable or enable web users',
    usage: ['cairn users create NAME --role R [--password-stdin]', 'cairn users list [--format json]', 'cairn users disable NAME', 'cairn users enable NAME'].join('\n       '),
  },
  tokens: {
    summary: 'create (printed once, last line), list or revoke API tokens',
    usage: ['cairn tokens create NAME --role R [--expires 90d] [--owner U]', 'cairn tokens list [--format json]', 'cairn tokens revoke NAME'].join('\n       '),
  },
  datasets: {
    summary: 'list, show, export (csv, jsonl) or import datasets',
    usage: [
      'cairn datasets list [--format json]',
      'cairn datasets show NAME [--version N] [--format json]',
      'cairn datasets export NAME [--version N] [--format csv|jsonl]',
      'cairn datasets import NAME FILE [--format csv|jsonl|parquet] [--delimiter C]',
    ].join('\n       '),
  },
  models: {
    summary: 'list, show, register or stage model versions',
    usage: [
      'cairn models list [--format json]',
      'cairn models show NAME [--version N] [--format json]',
      'cairn models register NAME FILE [--features a,b] [--task T] [--stage candidate|production]',
      'cairn models stage NAME VERSION candidate|canary|production|archived',
    ].join('\n       '),
  },
  features: {
    summary: 'online feature values of an entity; the feature views',
    usage: ['cairn features get VIEW KEY [KEY...] [--format json]', 'cairn features list [--format json]'].join('\n       '),
  },
  db: {
    summary: 'database upkeep: delete finished runs older than AGE, in batches',
    usage: 'cairn db prune --older-than AGE [--batch N] [--format json]',
  },
} as const satisfies Record<string, CommandUsage>

export type CommandName = keyof typeof USAGE

export function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(USAGE, name)
}

/** `cairn COMMAND --help`: the usage, then the longer help (from help.ts or the command's own module). */
export function commandHelp(name: string, help: string | undefined): string {
  const entry: CommandUsage = isCommandName(name) ? USAGE[name] : { summary: '', usage: `cairn ${name}` }
  return `usage: ${entry.usage}\n\n${help ?? entry.help ?? `${entry.summary[0]!.toUpperCase()}${entry.summary.slice(1)}.`}`
}

/** `cairn help`: every command with its one-line summary. */
export function overview(): string {
  const entries = Object.entries(USAGE) as [string, CommandUsage][]
  const width = Math.max(...entries.map(([name]) => name.length))
  const lines = entries.map(([name, entry]) => `  ${name.padEnd(width)}  ${entry.summary}`)
  return [
    'usage: cairn <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    '`cairn help COMMAND` or `cairn COMMAND --help` shows the options of one command.',
    'Environment: CAIRN_DAGS (DAG folder, default dags/), CAIRN_HOME (state, default .cairn/), DATABASE_URL,',
    'CAIRN_PORT (web, default 8080), CAIRN_CONFIG (default cairn.yaml; several files joined by `:` are merged in order), CAIRN_LOG_LEVEL (default info).',
    'Exit codes: 0 ok, 1 the thing checked failed, 2 usage error or cannot connect.',
  ].join('\n')
}

/** The message for a command that does not exist, with a suggestion when one is close. */
export function unknownCommand(name: string): string {
  const hint = closest(name, Object.keys(USAGE))
  return `cairn: unknown command "${name}"${hint ? `; did you mean "${hint}"?` : ''}\nRun \`cairn help\` for the list of commands.`
}

/** Whether the arguments ask for help: `--help` or `-h` before any `--` separator. */
export function asksForHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false
    if (arg === '--help' || arg === '-h') return true
  }
  return false
}
