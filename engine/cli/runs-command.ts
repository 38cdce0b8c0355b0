/**
 * The listing commands: `cairn runs DAG`, `cairn tasks RUN_ID`, `cairn dags`. Text is an aligned
 * table on stdout (nothing on stdout when there is nothing to list); `--format json` prints the
 * SPEC shapes of json-shapes.ts. Unknown DAG or run: exit 1.
 */
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { Settings } from '../config/settings.ts'
import { loadConfig } from '../config/load-config.ts'
import { createMasker } from '../secrets/mask.ts'
import type { Masker } from '../secrets/mask.ts'
import { readSecretValues } from '../web/secret-masking.ts'
import { dependencyOrder } from '../graph/task-graph.ts'
import type { TaskSpec } from '../dag/dag-model.ts'
import { RUN_STATE_LIST } from '../state/states.ts'
import { getDag, getDagVersion, listDags, listImportErrors } from '../store/dags.ts'
import { getRun, listRuns, listTaskInstances } from '../store/runs.ts'
import type { TaskInstanceRow } from '../store/runs.ts'
import { EXIT } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'
import { formatOption } from './format.ts'
import { parseChoice, parsePositiveInt, takePositionals } from './args.ts'
import { withDatabase } from './database.ts'
import { dagJson, runJson, taskJson } from '../json-shapes.ts'
import { formatDuration, formatTable, formatTime, oneLine } from './table.ts'

const MAX_LIMIT = 10_000

export const RUNS_HELP = `Lists the runs of DAG, newest first.
  --limit N    at most N runs (default 50, at most ${MAX_LIMIT})
  --state S    only runs in state S (${RUN_STATE_LIST.join(', ')})
Exit codes: 0 listed (also when there are none); 1 unknown DAG; 2 malformed arguments or no database.`

export async function runsCommand(args: string[], io: CommandIo): Promise<ExitCode> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { limit: { type: 'string' }, state: { type: 'string' }, format: { type: 'string' } } })
  const [dagId] = takePositionals(positionals, ['DAG'])
  const format = formatOption(values.format)
  const limit = parsePositiveInt('--limit', values.limit, MAX_LIMIT) ?? 50
  const state = parseChoice('--state', values.state, RUN_STATE_LIST)
  return withDatabase(io, async (db) => {
    // A DAG whose file was removed keeps its runs, so only a DAG never seen is unknown.
    if (!(await getDag(db, dagId!))) {
      io.stderr(`cairn runs: no DAG "${dagId}"`)
      return EXIT.failed
    }
    const runs = await listRuns(db, dagId!, { limit, ...(state ? { state } : {}) })
    if (format === 'json') io.stdout(JSON.stringify(runs.map(runJson)))
    else if (runs.length === 0) io.stderr(`cairn runs: DAG "${dagId}" has no runs${state ? ` in state ${state}` : ''}`)
    else {
      const rows = runs.map((r) => [r.runId, r.state, formatTime(r.logicalDate), formatTime(r.queuedAt), formatTime(r.startedAt), formatTime(r.endedAt), formatDuration(r.startedAt, r.endedAt)])
      for (const line of formatTable(['RUN ID', 'STATE', 'LOGICAL DATE', 'QUEUED', 'STARTED', 'ENDED', 'DURATION'], rows)) io.stdout(line)
    }
    return EXIT.ok
  })
}

export const TASKS_HELP = `Lists the task instances of RUN_ID in the DAG's order (upstream before downstream, ties in file order).
ATTEMPTS is the number of the latest attempt (0: not tried yet).
  --format json   an array of {"task_id","state","attempts","started_at","ended_at","outputs"}; outputs are
                  those the latest attempt published, secrets masked, {} when none
Exit codes: 0 listed; 1 unknown run; 2 malformed arguments or no database.`

export async function tasksCommand(args: string[], io: CommandIo): Promise<ExitCode> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { format: { type: 'string' } } })
  const [runId] = takePositionals(positionals, ['RUN_ID'])
  const format = formatOption(values.format)
  return withDatabase(io, async (db) => {
    const run = await getRun(db, runId!)
    if (!run) {
      io.stderr(`cairn tasks: no run "${runId}"`)
      return EXIT.failed
    }
    const spec = await getDagVersion(db, run.versionId)
    const instances = inTaskOrder(spec.tasks, await listTaskInstances(db, run.runId))
    if (format === 'json') {
      const mask = secretMasker(io.settings)
      io.stdout(JSON.stringify(instances.map((ti) => ({ ...taskJson(ti), outputs: mask.deep(ti.outputs ?? {}) }))))
    }
    else {
      const rows = instances.map((ti) => [ti.taskId, ti.state, String(ti.attempt), formatTime(ti.startedAt), formatTime(ti.endedAt), formatDuration(ti.startedAt, ti.endedAt), oneLine(ti.message)])
      for (const line of formatTable(['TASK', 'STATE', 'ATTEMPTS', 'STARTED', 'ENDED', 'DURATION', 'MESSAGE'], rows)) io.stdout(line)
    }
    return EXIT.ok
  })
}

/**
 * Workers mask secrets in outputs before storing them; this masks again with the secrets this process
 * can see (CAIRN_SECRET_* and the secrets dir of cairn.yaml), as the web server does for its responses,
 * in case a worker did not have a secret that ended up in an output.
 */
function secretMasker(settings: Settings): Masker {
  const dirSetting = loadConfig(settings.configPath, settings.cwd).config.secrets?.dir
  const dir = dirSetting === undefined ? undefined : resolve(settings.cwd, dirSetting)
  return createMasker(readSecretValues({ env: settings.env, ...(dir !== undefined ? { dir } : {}) }))
}

/** Dependency order, ties in file order; anything the spec does not know (it cannot happen, but never hide a row) last. */
function inTaskOrder<T extends Pick<TaskInstanceRow, 'taskId'>>(tasks: readonly TaskSpec[], instances: readonly T[]): T[] {
  const rank = new Map<string, number>()
  for (const task of dependencyOrder(tasks)) rank.set(task.id, rank.size)
  for (const task of tasks) if (!rank.has(task.id)) rank.set(task.id, rank.size)
  const of = (id: string): number => rank.get(id) ?? Number.MAX_SAFE_INTEGER
  return [...instances].sort((a, b) => of(a.taskId) - of(b.taskId) || (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0))
}

export const DAGS_HELP = `Lists the DAGs the schedulers know, with their paused flag, schedule, file and the number of
errors in that file (a DAG whose file has errors keeps running its last good version; \`cairn validate\` shows them).
Exit codes: 0 listed; 2 malformed arguments or no database.`

export async function dagsCommand(args: string[], io: CommandIo): Promise<ExitCode> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { format: { type: 'string' } } })
  takePositionals(positionals, [])
  const format = formatOption(values.format)
  return withDatabase(io, async (db) => {
    const dags = (await listDags(db)).filter((d) => !d.removed)
    const importErrors = await listImportErrors(db)
    const errorCount = (dagId: string, file: string | null): number =>
      importErrors.filter((e) => e.dagId === dagId || (file !== null && e.file === file)).reduce((n, e) => n + e.diagnostics.filter((d) => d.severity === 'error').length, 0)
    const specs = await Promise.all(dags.map((d) => (d.versionId === null ? undefined : getDagVersion(db, d.versionId))))
    const shown = dags.map((d, i) => dagJson(d, specs[i]?.schedule, errorCount(d.dagId, d.file)))
    // A data-aware schedule in the table: its datasets, after the cron expression when it has one.
    const scheduleText = (i: number): string => {
      const spec = specs[i]
      const datasets = spec?.scheduleDatasets ? `datasets: ${spec.scheduleDatasets.join(', ')}` : undefined
      return [spec?.schedule, datasets].filter((x) => x !== undefined).join(' + ') || '-'
    }
    const orphans = importErrors.filter((e) => !dags.some((d) => d.dagId === e.dagId || d.file === e.file))
    if (format === 'json') io.stdout(JSON.stringify(shown))
    else {
      if (shown.length > 0) {
        const rows = shown.map((d, i) => [d.dag_id, d.paused ? 'yes' : 'no', scheduleText(i), d.file ?? '-', String(d.import_errors)])
        for (const line of formatTable(['DAG', 'PAUSED', 'SCHEDULE', 'FILE', 'ERRORS'], rows)) io.stdout(line)
      } else io.stderr('cairn dags: no DAGs loaded yet (is `cairn up` running, and are there files in its DAG folder?)')
      if (orphans.length > 0) io.stderr(`cairn dags: ${orphans.length} file${orphans.length === 1 ? '' : 's'} failed to load: ${orphans.map((e) => e.file).join(', ')} (\`cairn validate\` shows why)`)
    }
    return EXIT.ok
  })
}
