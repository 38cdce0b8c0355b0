/**
 * The model registry (SPEC section 7): register a trained model file as the next candidate version
 * of a named model, list and read versions, move them between stages, and resolve model references:
 *
 *   models:/NAME/VERSION   a version number            models:/churn/3
 *   models:/NAME/STAGE     candidate (the newest), canary, production, archived (the newest)
 *   /path/to/model.onnx    a file (absolute, or relative to `baseDir`)
 *
 * Files live on shared storage like datasets: <data dir>/_models/<name>/<version>/model.onnx (a
 * dataset name cannot start with `_`, so the folder never clashes with one). Registering from a
 * task attempt is fenced by the attempt's claim, as publishing a dataset is: an attempt that was
 * cancelled, timed out or declared lost registers nothing.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { copyFile, mkdir, rename, stat } from 'node:fs/promises'
import path from 'node:path'
import type { Db } from '../store/db.ts'
import { attemptHoldsClaim } from '../store/datasets.ts'
import {
  findRegisteredBy,
  insertModelVersion,
  isModelStage,
  listModelAudit,
  listAllModelVersions,
  listModels,
  listModelVersions,
  lockNextModelVersion,
  readModelVersion,
  readModelVersionInStage,
  readRunDagVersion,
  updateModelStage,
} from '../store/models.ts'
import type { ModelActor, ModelAuditRow, ModelLineage, ModelStage, ModelSummaryRow, ModelVersionRow } from '../store/models.ts'
import type { Producer } from '../data/datasets.ts'
import { listRollouts } from '../store/rollouts.ts'
import type { RolloutRow } from '../store/rollouts.ts'
import { moveStage } from './stages.ts'
import type { StageChange } from './stages.ts'

export const MODEL_NAME = /^[a-z][a-z0-9_]{0,63}$/
export const MODELS_FOLDER = '_models'

export interface ModelVersion extends ModelVersionRow {
  /** Absolute path of the model file. */
  path: string
  /** `models:/NAME/VERSION` */
  uri: string
}

/** A model with every version, newest first (`cairn models list`, `GET /api/v1/models`). */
export interface ModelSummary extends ModelSummaryRow {
  versions: ModelVersion[]
}

export interface RegisterRequest {
  name: string
  /** The trained model file (ONNX); copied into the registry. */
  file: string
  metrics?: Record<string, unknown>
  features?: string[]
  taskKind?: string
  /** The training dataset version; its feature-view inputs are added to the lineage. */
  dataset?: { name: string; version: number; inputs?: readonly unknown[] }
}

export type ResolvedModel =
  | { ok: true; path: string; model?: string; version?: number; stage?: ModelStage; sha256?: string }
  | { ok: false; message: string }

export interface Models {
  register(request: RegisterRequest): Promise<{ version: ModelVersion; reused: boolean }>
  get(name: string, version?: number): Promise<ModelVersion | undefined>
  versions(name: string): Promise<ModelVersion[]>
  list(): Promise<ModelSummary[]>
  /** Versions (oldest first), stage changes and rollouts, read from one snapshot so that they agree. */
  history(name: string): Promise<ModelHistory>
  /**
   * The registry's lifecycle (stages.ts): moves a version to a stage; promoting to production archives
   * the previous production version; a second canary is refused with a StageConflictError.
   */
  stage(name: string, version: number, stage: ModelStage, actor: ModelActor): Promise<StageChange | undefined>
  /** Rollouts of a model, newest first (the rollout history). */
  rollouts(name: string): Promise<RolloutRow[]>
  /** Moves a version to a stage as it is (the database refuses a second production or canary version). */
  setStage(name: string, version: number, stage: ModelStage, actor: ModelActor, trafficShare?: number): Promise<ModelVersion | undefined>
  resolve(reference: string, baseDir?: string): Promise<ResolvedModel>
}

export interface ModelHistory {
  versions: ModelVersion[]
  audit: ModelAuditRow[]
  rollouts: RolloutRow[]
}

export interface ModelsOptions {
  db: Db
  /** The data directory (datasets' directory); models go under its `_models` folder. */
  dir: string
  producer: Producer
}

export function parseModelReference(reference: string): { name: string; version: number } | { name: string; stage: ModelStage } | undefined {
  const m = /^models:\/([^/]+)\/([^/]+)$/.exec(reference)
  if (!m || !MODEL_NAME.test(m[1]!)) return undefined
  if (/^[1-9][0-9]{0,9}$/.test(m[2]!)) return { name: m[1]!, version: Number(m[2]) }
  return isModelStage(m[2]!) ? { name: m[1]!, stage: m[2] } : undefined
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

export function createModels(options: ModelsOptions): Models {
  const dir = path.resolve(options.dir)
  const { db, producer } = options
  const withPath = (row: ModelVersionRow): ModelVersion => ({ ...row, path: path.join(dir, row.artifact), uri: `models:/${row.model}/${row.version}` })
  const actor: ModelActor = producer.kind === 'attempt' ? { run: producer.runId, task: producer.taskId } : { user: producer.actor }

  return {
    async register(request) {
      if (!MODEL_NAME.test(request.name)) throw new Error(`${JSON.stringify(request.name)} is not a model name (^[a-z][a-z0-9_]{0,63}$)`)
      const sha256 = await sha256File(request.file)
      const lineage: ModelLineage = {}
      if (producer.kind === 'attempt') {
        Object.assign(lineage, { run: producer.runId, task: producer.taskId, attempt: producer.attempt, dag_version: await readRunDagVersion(db, producer.runId) })
      }
      if (request.dataset) {
        lineage.dataset = { name: request.dataset.name, version: request.dataset.version }
        lineage.feature_views = (request.dataset.inputs ?? []).filter((i): i is { feature_view: string; definition_version: number } => typeof i === 'object' && i !== null && 'feature_view' in i)
      }
      return db.tx(async (q) => {
        if (producer.kind === 'attempt' && !(await attemptHoldsClaim(q, producer.claimId))) {
          throw new Error('this attempt no longer holds its task instance (it was cancelled, timed out or declared lost); no model was registered')
        }
        if (producer.kind === 'attempt') {
          const same = await findRegisteredBy(q, request.name, producer.runId, producer.taskId, sha256)
          if (same) return { version: withPath(same), reused: true }
        }
        const version = await lockNextModelVersion(q, request.name)
        const artifact = [MODELS_FOLDER, request.name, String(version), 'model.onnx'].join('/')
        const target = path.join(dir, artifact)
        await mkdir(path.dirname(target), { recursive: true })
        // Copied under the model's row lock, complete before the row commits (rename is atomic).
        const partial = `${target}.partial`
        await copyFile(request.file, partial)
        await rename(partial, target)
        if ((await sha256File(target)) !== sha256) throw new Error(`the copy of ${request.file} in the registry does not match its checksum`)
        const row = await insertModelVersion(q, {
          model: request.name,
          version,
          artifact,
          sha256,
          metrics: request.metrics ?? {},
          lineage,
          features: request.features ?? [],
          taskKind: request.taskKind ?? null,
          ...(producer.kind === 'attempt' ? { runId: producer.runId, taskId: producer.taskId } : {}),
          actor,
        })
        return { version: withPath(row), reused: false }
      })
    },
    async get(name, version) {
      const row = await readModelVersion(db, name, version)
      return row && withPath(row)
    },
    async versions(name) {
      return (await listModelVersions(db, name)).map(withPath)
    },
    async list() {
      const [models, versions] = await Promise.all([listModels(db), listAllModelVersions(db)])
      const byModel = new Map<string, ModelVersion[]>()
      for (const row of versions) {
        const list = byModel.get(row.model)
        if (list) list.push(withPath(row))
        else byModel.set(row.model, [withPath(row)])
      }
      return models.map((m) => ({ ...m, versions: byModel.get(m.name) ?? [] }))
    },
    // A promotion changes a version's stage and its rollout in one transaction: read apart, a page
    // could show the rollout promoted and the old version still in production.
    history: (name) =>
      db.tx(async (q) => ({
        versions: (await listModelVersions(q, name)).map(withPath),
        audit: await listModelAudit(q, name),
        rollouts: await listRollouts(q, name),
      }), { isolation: 'repeatable read' }),
    stage: (name, version, stage, who) => db.tx((q) => moveStage(q, name, version, stage, who, new Date())),
    rollouts: (name) => listRollouts(db, name),
    async setStage(name, version, stage, who, trafficShare) {
      const changed = await db.tx((q) => updateModelStage(q, name, version, stage, who, trafficShare))
      return changed && withPath(changed.row)
    },
    async resolve(reference, baseDir) {
      if (reference.startsWith('models:/')) {
        const parsed = parseModelReference(reference)
        if (!parsed) return { ok: false, message: `${JSON.stringify(reference)} is not a model reference (models:/NAME/VERSION or models:/NAME/candidate|canary|production|archived)` }
        const row = 'version' in parsed ? await readModelVersion(db, parsed.name, parsed.version) : await readModelVersionInStage(db, parsed.name, parsed.stage)
        if (!row) return { ok: false, message: `model ${parsed.name} has no ${'version' in parsed ? `version ${parsed.version}` : `${parsed.stage} version`}` }
        return { ok: true, path: path.join(dir, row.artifact), model: row.model, version: row.version, stage: row.stage, sha256: row.sha256 }
      }
      if (!reference.endsWith('.onnx')) return { ok: false, message: `${JSON.stringify(reference)} is neither a model reference (models:/NAME/VERSION|STAGE) nor an .onnx file` }
      const file = path.resolve(baseDir ?? process.cwd(), reference)
      const found = await stat(file).catch(() => undefined)
      if (!found?.isFile()) return { ok: false, message: `model file ${file} does not exist` }
      return { ok: true, path: file }
    },
  }
}
