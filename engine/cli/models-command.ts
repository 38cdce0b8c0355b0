/**
 * `cairn models list|show|register|stage` (SPEC section 7). Metadata comes from the database of a running
 * `cairn up`, files from the data directory of the same cairn.yaml (`data.dir`, default
 * CAIRN_HOME/datasets, under `_models/`). `register` adds a candidate version made by a person (no
 * run, no task). Unknown model or version: exit 1.
 */
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { DataSettings } from '../config/data-settings.ts'
import { createModels, MODEL_NAME } from '../models/registry.ts'
import type { Models } from '../models/registry.ts'
import { modelSummaryJson, modelVersionJson } from '../models/json.ts'
import { StageConflictError } from '../models/stages.ts'
import { MODEL_STAGES } from '../store/models.ts'
import type { Db } from '../store/db.ts'
import { EXIT, UsageError } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'
import { parseChoice, parsePositiveInt, takePositionals } from './args.ts'
import { withDatabase } from './database.ts'
import { cliDataSettings, osUser } from './cli-data.ts'
import { formatOption } from './format.ts'
import { formatTable, formatTime } from './table.ts'
import { escapeControls } from './terminal-escape.ts'
import { metricsSummary } from '../models/metrics-summary.ts'

export const MODELS_HELP = `Models: named, numbered versions of ONNX models with a stage (SPEC section 7).
  list                     every model with its latest version and its production and canary versions
    --format json          [{"name","latest_version","production","canary","created_at","versions"}],
                           versions newest first, each as in show
  show NAME                a version (default the latest): stage, file and checksum, metrics, features,
                           lineage; then every version of the model with its stage and traffic share
    --version N            that version instead of the latest
    --format json          {"name","version","uri","stage","traffic_share","artifact","sha256","metrics",
                           "features","task_kind","lineage","created_at","latest_version","versions"}
                           (versions: every version, newest first, each with the same fields)
  register NAME FILE       copies an .onnx file into the registry as the next candidate version; prints
                           the version number as the last line (its reference models:/NAME/VERSION on stderr)
    --features a,b,c       the feature columns the model reads, in order
    --task T               binary, multiclass or regression
    --stage S              candidate (default) or production (archives the previous production version)
  stage NAME VERSION STAGE moves a version to candidate, canary, production or archived; production
                           archives the previous production version; a second canary is refused
                           (a model has one canary at a time); recorded in the audit log with your
                           OS user name
Models live in data.dir of cairn.yaml (default CAIRN_HOME/datasets) under _models/; run these where
\`cairn up\` runs (same CAIRN_HOME, CAIRN_CONFIG or DATABASE_URL).
Exit codes: 0 done; 1 unknown model or version, a file that cannot be read, or a stage change the
registry refuses; 2 malformed arguments or no database.`

const ACTIONS = ['list', 'show', 'register', 'stage'] as const
const REGISTER_STAGES = ['candidate', 'production'] as const
const TASKS = ['binary', 'multiclass', 'regression'] as const

export async function modelsCommand(args: string[], io: CommandIo): Promise<ExitCode> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { format: { type: 'string' }, version: { type: 'string' }, features: { type: 'string' }, task: { type: 'string' }, stage: { type: 'string' } },
  })
  const action = parseChoice('action', positionals[0] ?? missing(), ACTIONS)!
  const rest = positionals.slice(1)
  const settings = io.settings
  const data = (): DataSettings => cliDataSettings(settings)
  const models = (db: Db, where: DataSettings): Models => createModels({ db, dir: where.dir, producer: { kind: 'actor', actor: osUser() } })
  switch (action) {
    case 'list': {
      takePositionals(rest, [])
      const format = formatOption(values.format)
      const where = data()
      return withDatabase(io, async (db) => {
        const all = await models(db, where).list()
        if (format === 'json') io.stdout(JSON.stringify(all.map(modelSummaryJson)))
        else if (all.length === 0) io.stderr('cairn models: no models yet (a `train` task with model_name or `cairn models register` makes one)')
        else {
          const rows = all.map((m) => [m.name, String(m.latestVersion), m.production === null ? '-' : String(m.production), m.canary === null ? '-' : String(m.canary), formatTime(m.createdAt)])
          for (const line of formatTable(['MODEL', 'LATEST', 'PRODUCTION', 'CANARY', 'CREATED'], rows)) io.stdout(line)
        }
        return EXIT.ok
      })
    }
    case 'show': {
      const [name] = takePositionals(rest, ['NAME'])
      const format = formatOption(values.format)
      const version = parsePositiveInt('--version', values.version, 2_147_483_647)
      const where = data()
      return withDatabase(io, async (db) => {
        const registry = models(db, where)
        // Every version, newest first, read once: the one shown is among them.
        const versions = MODEL_NAME.test(name!) ? (await registry.versions(name!)).reverse() : []
        const latest = versions[0]
        const found = version === undefined ? latest : versions.find((v) => v.version === version)
        if (!found) {
          io.stderr(latest ? `cairn models show: model ${name} has no version ${version} (the latest is ${latest.version})` : `cairn models show: no model "${name}" (\`cairn models list\` shows them)`)
          return EXIT.failed
        }
        if (format === 'json') io.stdout(JSON.stringify({ ...modelVersionJson(found), latest_version: (latest ?? found).version, versions: versions.map(modelVersionJson) }))
        else {
          const lines = [
            `model      ${found.model}`,
            `version    ${found.version} (${found.uri})`,
            `stage      ${found.stage}${found.trafficShare > 0 ? ` (traffic ${found.trafficShare})` : ''}`,
            `file       ${found.path}`,
            `sha256     ${found.sha256}`,
            `task       ${found.taskKind ?? '-'}`,
            `features   ${found.features.length > 0 ? found.features.join(', ') : '-'}`,
            `created    ${formatTime(found.createdAt)}`,
            `lineage    ${JSON.stringify(found.lineage)}`,
            `metrics    ${JSON.stringify(found.metrics)}`,
          ]
          lines.push('', ...formatTable(['VERSION', 'STAGE', 'TRAFFIC', 'CREATED', 'METRICS'], versions.map((v) => [String(v.version), v.stage, String(v.trafficShare), formatTime(v.createdAt), metricsSummary(v.metrics)])))
          for (const line of lines) io.stdout(io.stdoutIsTTY ? escapeControls(line) : line)
        }
        return EXIT.ok
      })
    }
    case 'register': {
      const [name, file] = takePositionals(rest, ['NAME', 'FILE'])
      if (!MODEL_NAME.test(name!)) throw new UsageError(`"${name}" is not a model name (lowercase letters, digits and _, starting with a letter, at most 64)`)
      const task = parseChoice('--task', values.task, TASKS)
      const stage = parseChoice('--stage', values.stage, REGISTER_STAGES)
      const features = values.features === undefined ? [] : values.features.split(',').map((f) => f.trim()).filter((f) => f !== '')
      const path = resolve(settings.cwd, file!)
      const where = data()
      return withDatabase(io, async (db) => {
        if (!(await stat(path).then((s) => s.isFile(), () => false))) {
          io.stderr(`cairn models register: ${file}: no such file`)
          return EXIT.failed
        }
        const registry = models(db, where)
        const { version } = await registry.register({ name: name!, file: path, features, ...(task ? { taskKind: task } : {}) })
        if (stage === 'production') {
          const changed = await registry.stage(name!, version.version, 'production', { user: osUser() })
          if (changed?.archived != null) io.stderr(`version ${changed.archived} archived`)
        }
        io.stderr(`registered ${version.uri} (${stage ?? 'candidate'})`)
        io.stdout(String(version.version))
        return EXIT.ok
      })
    }
    case 'stage': {
      const [name, versionText, stageText] = takePositionals(rest, ['NAME', 'VERSION', 'STAGE'])
      const version = parsePositiveInt('VERSION', versionText, 2_147_483_647)!
      const stage = parseChoice('STAGE', stageText, MODEL_STAGES)!
      const where = data()
      return withDatabase(io, async (db) => {
        const registry = models(db, where)
        try {
          const changed = MODEL_NAME.test(name!) ? await registry.stage(name!, version, stage, { user: osUser() }) : undefined
          if (!changed) {
            const latest = MODEL_NAME.test(name!) ? await registry.get(name!) : undefined
            io.stderr(latest ? `cairn models stage: model ${name} has no version ${version} (the latest is ${latest.version})` : `cairn models stage: no model "${name}" (\`cairn models list\` shows them)`)
            return EXIT.failed
          }
          if (changed.from === stage) io.stderr(`version ${version} is already ${stage}`)
          else io.stderr(`version ${version}: ${changed.from} -> ${stage}${changed.archived === null ? '' : ` (version ${changed.archived} archived)`}`)
          io.stdout(`models:/${name}/${version}`)
          return EXIT.ok
        } catch (error) {
          if (!(error instanceof StageConflictError)) throw error
          io.stderr(`cairn models stage: ${error.message}`)
          return EXIT.failed
        }
      })
    }
  }
}

function missing(): never {
  throw new UsageError('missing an action (list, show, register or stage)')
}

