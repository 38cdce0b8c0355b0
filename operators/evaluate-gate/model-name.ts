/**
 * Which registered model `evaluate.gate`'s `compare_to` compares with: `model_name`, else the NAME of a
 * `model` given as `models:/NAME/VERSION|STAGE`. A model given as a file names no registered model, so
 * `compare_to` on a file needs `model_name`: `cairn validate` says so when `model` is written as a
 * literal path, the task (invalid_params, not retried) when a template renders to one.
 * Kept apart from run.ts so that the validator does not load ONNX Runtime or DuckDB.
 */
import type { Json } from '../../engine/dag/yaml-load.ts'
import { hasTemplate } from '../../engine/template/liquid.ts'
import type { ParamProblem } from '../define.ts'

export function modelNameNeeded(model: string): string {
  return `compare_to: production needs model_name when the model is a file (${JSON.stringify(model)}): only a registry reference (models:/NAME/VERSION or models:/NAME/STAGE) names the model whose production version is the baseline; set model_name to the registered model to compare with`
}

/** Static check of the params as written: compare_to with a literal file path and no model_name. */
export function checkGateParams(params: Json): ParamProblem[] {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) return []
  const model = params.model
  if (params.compare_to === undefined || params.model_name !== undefined || typeof model !== 'string' || model === '') return []
  if (hasTemplate(model) || model.startsWith('models:/')) return []
  return [{ code: 'MISSING_KEY', message: modelNameNeeded(model), path: ['model'] }]
}
