/**
 * `cairn datasets list|show|export|import` (SPEC section 7). Metadata comes from the database of a
 * running `cairn up`, rows from the datasets directory of the same cairn.yaml (`data.dir`, default
 * CAIRN_HOME/datasets). `import` publishes a version made by a person (no run, no task) with the same
 * file reader as `ingest`; `export` streams every row to stdout. Unknown dataset or version: exit 1.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Writable } from 'node:stream'
import { parseArgs } from 'node:util'
import type { DataSettings } from '../config/data-settings.ts'
import { createDatasets, DATASET_NAME } from '../data/datasets.ts'
import type { DatasetVersion } from '../data/datasets.ts'
import { openDuckDb } from '../data/duckdb.ts'
import { EXPORT_FORMATS, exportRows } from '../data/export-rows.ts'
import type { StagedVersion } from '../data/datasets.ts'
import { sqlIdent, sqlString } from '../data/duckdb.ts'
import { FILE_FORMATS } from '../data/reader/csv.ts'
import type { FileFormat } from '../data/reader/csv.ts'
import { badRowsOf } from '../data/reader/bad-rows.ts'
import { failure, isFailure } from '../data/reader/failure.ts'
import { LOADED } from '../data/reader/loaded.ts'
import { formatOfPath, readFiles } from '../data/reader/read-files.ts'
import type { Db } from '../store/db.ts'
import { listDatasets } from '../store/datasets.ts'
import { datasetJson, datasetVersionJson } from '../json-shapes.ts'
import { EXIT, UsageError } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'
import { parseChoice, parsePositiveInt, takePositionals } from './args.ts'
import { withDatabase } from './database.ts'
import { cliDataSettings, osUser } from './cli-data.ts'
import { formatOption } from './format.ts'
import { formatTable, formatTime } from './table.ts'
import { escapeControls } from './terminal-escape.ts'

export const DATASETS_HELP = `Datasets: named, numbered, immutable versions (SPEC section 7).
  list                     every dataset with its latest version, rows and when it was last published
  show NAME                a version (default the latest): schema, rows, size, who made it (run and task, or
                           the person who imported it), its inputs (lineage), expectation report, bad rows
    --version N            that version instead of the latest
    --format json          {"name","version","rows","columns":[{"name","type"}],"created_at",
                           "produced_by":{"run_id","task_id","run_pruned"} or null, "bytes","produced_kind","actor",
                           "inputs","expectations","bad_rows"}
  export NAME              every row on stdout, streamed: csv with a header (default) or jsonl
    --version N            that version instead of the latest
    --format csv|jsonl     timestamps as 2026-01-01T00:00:00.000Z (UTC), dates as 2026-01-01; null is an
                           empty field in csv (the empty string is ""), null in jsonl
  import NAME FILE         publishes a new version from a csv, jsonl or parquet file, read as an \`ingest\` task
                           with default params reads it (types inferred from every value; a timestamp without
                           an offset is UTC; in csv an empty field is null, "" the empty string); a bad line
                           fails it, named FILE:LINE, and nothing is published; prints the new version as
                           its last line
    --format F             csv, jsonl or parquet (default: from the file's extension)
    --delimiter C          csv field separator (default ,)
Datasets live in data.dir of cairn.yaml (default CAIRN_HOME/datasets); run these where \`cairn up\` runs
(same CAIRN_HOME, CAIRN_CONFIG or DATABASE_URL).
Exit codes: 0 done; 1 unknown dataset or version, or a file that cannot be read or has bad lines; 2 malformed arguments or no database.`

const ACTIONS = ['list', 'show', 'export', 'import'] as const

export async function datasetsCommand(args: string[], io: CommandIo): Promise<ExitCode> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { format: { type: 'string' }, version: { type: 'string' }, delimiter: { type: 'string' } },
  })
  const action = parseChoice('action', positionals[0] ?? missing('an action (list, show, export or import)'), ACTIONS)!
  const rest = positionals.slice(1)
  const settings = io.settings
  const data = (): DataSettings => cliDataSettings(settings)
  switch (action) {
    case 'list': {
      takePositionals(rest, [])
      const format = formatOption(values.format)
      return withDatabase(io, async (db) => list(db, io, format))
    }
    case 'show': {
      const [name] = takePositionals(rest, ['NAME'])
      const format = formatOption(values.format)
      const version = parsePositiveInt('--version', values.version, 2_147_483_647)
      const where = data()
      return withDatabase(io, async (db) => {
        const found = await findVersion(db, where, io, 'show', name!, version)
        if (!found) return EXIT.failed
        if (format === 'json') io.stdout(JSON.stringify(datasetVersionJson(found)))
        else for (const line of describeVersion(found, (await latestOf(db, where, name!)) ?? found.version)) io.stdout(io.stdoutIsTTY ? escapeControls(line) : line)
        return EXIT.ok
      })
    }
    case 'export': {
      const [name] = takePositionals(rest, ['NAME'])
      const format = parseChoice('--format', values.format, EXPORT_FORMATS) ?? 'csv'
      const version = parsePositiveInt('--version', values.version, 2_147_483_647)
      const where = data()
      return withDatabase(io, async (db) => {
        const found = await findVersion(db, where, io, 'export', name!, version)
        if (!found) return EXIT.failed
        if (found.files.length === 0) {
          io.stderr(`cairn datasets export: the files of ${name}@${found.version} are missing from ${found.dir}`)
          return EXIT.failed
        }
        await exportRows(found, format, io.stdoutStream ?? linesOf(io), where.duckdb)
        return EXIT.ok
      })
    }
    case 'import': {
      const [name, file] = takePositionals(rest, ['NAME', 'FILE'])
      if (!DATASET_NAME.test(name!)) throw new UsageError(`"${name}" is not a dataset name (lowercase letters, digits and _, starting with a letter, at most 64)`)
      const path = resolve(settings.cwd, file!)
      const format = parseChoice('--format', values.format, FILE_FORMATS) ?? formatOfPath(path)
      if (format === undefined) throw new UsageError(`cannot tell the format of ${file} from its name; add --format csv, jsonl or parquet`)
      if (values.delimiter !== undefined && (format !== 'csv' || values.delimiter.length !== 1)) throw new UsageError('--delimiter takes one character, for csv files')
      const where = data()
      return withDatabase(io, async (db) => importFile(db, where, io, name!, file!, path, format, values.delimiter))
    }
  }
}

/**
 * `import`: the file read exactly as an `ingest` task with default params reads it (types inferred,
 * `on_bad_rows: fail`), then published as a version made by the OS user.
 */
async function importFile(db: Db, where: DataSettings, io: CommandIo, name: string, file: string, path: string, format: FileFormat, delimiter: string | undefined): Promise<ExitCode> {
  const datasets = createDatasets({ db, dir: where.dir, producer: { kind: 'actor', actor: osUser() }, duckdb: where.duckdb })
  const spill = await mkdtemp(join(tmpdir(), 'cairn-import-'))
  const duck = await openDuckDb({ ...where.duckdb, tempDir: spill })
  let staged: StagedVersion | undefined
  let published = false
  try {
    const fail = (message: string): ExitCode => {
      io.stderr(`cairn datasets import: cannot read ${file} as ${format}: ${message}`)
      return EXIT.failed
    }
    if (!(await stat(path).then((s) => s.isFile(), () => false))) return fail('no such file')
    // The inferred types are shown once the version is published.
    const ctx = { duck, declared: new Map(), log: { info: () => undefined } }
    const read = await readFiles(format, [{ path, label: file }], delimiter !== undefined ? { delimiter } : {}, ctx, async () => (staged = await datasets.stage(name)))
      .catch((error: unknown) => failure('data_invalid', false, error instanceof Error ? error.message : String(error)))
    if (isFailure(read)) return fail(read.message)
    const bad = await badRowsOf(duck, read, { onBadRows: 'fail', maxBadRows: 0 })
    if (isFailure(bad)) return fail(bad.message)
    const columns = read.plans.map((p) => ({ name: p.name, type: p.type }))
    if (!('written' in read)) {
      staged = await datasets.stage(name)
      await duck.run(`COPY (SELECT ${columns.map((c) => sqlIdent(c.name)).join(', ')} FROM ${LOADED} WHERE __problem IS NULL) TO ${sqlString(join(staged.dir, 'part-00000.parquet'))} (FORMAT parquet)`)
    }
    const [result] = await datasets.publish([{ staged: staged!, producedKind: 'import', details: { file: path, format }, declared: columns }])
    published = true
    const version = result!.version
    io.stderr(`imported ${version.rows} row${version.rows === 1 ? '' : 's'} from ${file}: ${columns.map((c) => `${c.name} ${c.type}`).join(', ')}`)
    io.stdout(String(version.version))
    return EXIT.ok
  } finally {
    duck.close()
    // Not published: nothing may stay behind.
    if (!published) await staged?.discard()
    await rm(spill, { recursive: true, force: true })
  }
}

function missing(what: string): never {
  throw new UsageError(`missing ${what}`)
}

async function list(db: Db, io: CommandIo, format: 'text' | 'json'): Promise<ExitCode> {
  const datasets = await listDatasets(db)
  if (format === 'json') io.stdout(JSON.stringify(datasets.map(datasetJson)))
  else if (datasets.length === 0) io.stderr('cairn datasets: no datasets yet (an `ingest` task or `cairn datasets import` makes one)')
  else {
    const rows = datasets.map((d) => [d.name, String(d.latestVersion), d.rows === null ? '-' : String(d.rows), formatTime(d.updatedAt), formatTime(d.createdAt)])
    for (const line of formatTable(['DATASET', 'VERSION', 'ROWS', 'UPDATED', 'CREATED'], rows)) io.stdout(line)
  }
  return EXIT.ok
}

async function findVersion(db: Db, where: DataSettings, io: CommandIo, action: string, name: string, version: number | undefined): Promise<DatasetVersion | undefined> {
  const datasets = createDatasets({ db, dir: where.dir, producer: { kind: 'actor', actor: osUser() }, duckdb: where.duckdb })
  const found = DATASET_NAME.test(name) ? await datasets.get(name, version) : undefined
  if (found) return found
  const latest = DATASET_NAME.test(name) ? await datasets.get(name) : undefined
  io.stderr(latest ? `cairn datasets ${action}: dataset ${name} has no version ${version} (the latest is ${latest.version})` : `cairn datasets ${action}: no dataset "${name}" (\`cairn datasets list\` shows them)`)
  return undefined
}

async function latestOf(db: Db, where: DataSettings, name: string): Promise<number | undefined> {
  return (await createDatasets({ db, dir: where.dir, producer: { kind: 'actor', actor: 'cli' } }).get(name))?.version
}

/** The human form of `show`. */
export function describeVersion(v: DatasetVersion, latest: number): string[] {
  const lines = [
    `dataset ${v.dataset}, version ${v.version}${v.version === latest ? ' (latest)' : ` (latest: ${latest})`}`,
    `rows      ${v.rows} (${formatBytes(v.bytes)})`,
    `created   ${v.createdAt.toISOString()}`,
    `made by   ${v.runId !== null ? `${v.producedKind}: run ${v.runId}, task ${v.taskId}${v.attempt !== null ? `, attempt ${v.attempt}` : ''}${v.runPruned ? ' (run pruned)' : ''}` : `${v.producedKind}${v.actor ? ` by ${v.actor}` : ''}`}`,
    '',
    'columns:',
    ...formatTable(['NAME', 'TYPE'], v.columns.map((c) => [c.name, c.type])).map((l) => `  ${l}`),
    '',
  ]
  if (v.inputs.length === 0) lines.push('inputs: none')
  else {
    lines.push('inputs:')
    for (const input of v.inputs) {
      lines.push(`  ${'dataset' in input ? `dataset ${input.dataset}@${input.version}` : 'model' in input ? `model ${input.model} version ${input.model_version}` : `feature view ${input.feature_view} (definition ${input.definition_version})`}`)
    }
  }
  lines.push(...describeExpectations(v.expectations))
  lines.push(v.badRows ? `bad rows: ${v.badRows.count} kept aside by quarantine${v.badRows.location ? ` (${v.badRows.location} in ${v.dir})` : ''}` : 'bad rows: none')
  return lines
}

/** The expectation report, whatever its exact shape: a list of checks, or an object of them. */
function describeExpectations(report: unknown): string[] {
  if (report === null || report === undefined) return ['expectations: none']
  const checks = Array.isArray(report) ? report : typeof report === 'object' && Array.isArray((report as { checks?: unknown }).checks) ? (report as { checks: unknown[] }).checks : undefined
  if (!checks) return ['expectations:', ...Object.entries(report as Record<string, unknown>).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`)]
  return [
    'expectations:',
    ...checks.map((c) => {
      if (typeof c !== 'object' || c === null) return `  ${JSON.stringify(c)}`
      const { name, expectation, check, passed, ok, ...rest } = c as Record<string, unknown>
      const label = name ?? expectation ?? check ?? ''
      const verdict = passed ?? ok
      return `  ${verdict === true ? 'pass' : verdict === false ? 'FAIL' : '-   '}  ${typeof label === 'string' ? label : JSON.stringify(label)}${Object.keys(rest).length > 0 ? `  ${JSON.stringify(rest)}` : ''}`
    }),
  ]
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KB', 'MB', 'GB', 'TB']
  let value = n / 1024
  let i = 0
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024
    i++
  }
  return `${value.toFixed(1)} ${units[i]}`
}

/** A stream over `io.stdout` for callers that give no stream (in-process use): whole lines only. */
function linesOf(io: CommandIo): Writable {
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      const text = String(chunk)
      io.stdout(text.endsWith('\n') ? text.slice(0, -1) : text)
      done()
    },
  })
}
