/**
 * Renders a task's `params`, `env` and `when` just before an attempt runs (SPEC section 2), with the
 * same sandboxed LiquidJS engine the validator analyses templates with.
 *
 * Rules:
 * - Params the operator declares as `literalParams` (shell's `script`) are never rendered: each
 *   `{{ ... }}` in them becomes a reference to an environment variable that holds its rendered
 *   value (script-env.ts), so a value never becomes script text.
 * - Only strings containing `{{` or `{%` are rendered, each exactly once; keys, numbers, booleans
 *   and null are left as they are. A rendered value is never rendered again, so a run param whose
 *   value is `{{ 7*7 }}` reaches the task as those characters.
 * - Strings in, strings out: `"{{ params.n }}"` with n = 5 gives `"5"`, never the number 5, so the
 *   shape of params does not depend on run-time values (the params schema checked at load time
 *   stays true). Liquid prints an array by joining its items and an object as `[object Object]`;
 *   use `| json` to pass structured values.
 * - Unknown variables are errors (strictVariables), as are missing secrets.
 * - Secrets are read lazily through a Proxy: only the secrets a template actually reads are looked
 *   up, and their values are returned in `secretValues` so the worker can mask exactly those.
 * - One budget per task, not per template: 40 loop templates at Liquid's per-render limit each once
 *   took 40 s. The time left is each template's Liquid render limit, and the rendered text of the
 *   whole task is bounded. The worker renders off the event loop (render-pool.ts), which also
 *   enforces the budget from outside should a template not yield to Liquid's checks.
 */
import type { Template } from 'liquidjs'
import { createTemplateEngine, hasTemplate } from './liquid.ts'
import type { SecretStore } from '../secrets/secrets.ts'
import { createMasker } from '../secrets/mask.ts'
import { scriptTemplates } from './script-env.ts'

export interface TemplateVariables {
  dag: { id: string }
  run: {
    id: string
    logical_date: string
    data_interval_start: string
    data_interval_end: string
    /** False for a scheduled or backfill run whose next interval has already ended (Airflow's "latest only"). */
    is_latest: boolean
  }
  task: { id: string; attempt: number }
  /** `run.logical_date` as YYYY-MM-DD in the DAG's time zone. */
  ds: string
  ds_nodash: string
  /** Run parameters (trigger values merged over defaults). */
  params: Record<string, unknown>
  /** Outputs of the upstream tasks, keyed by task id. */
  tasks: Record<string, { outputs: Record<string, unknown> }>
  /** Looked up only for the names templates use. */
  secrets: SecretStore
}

export interface TaskTemplates {
  params?: Record<string, unknown> | undefined
  env?: Record<string, string | number | boolean> | undefined
  /** Absent means the task runs. */
  when?: unknown
  /** Top-level params keys never rendered; their templates pass through env (the operator's `literalParams`). */
  literalParams?: readonly string[]
}

export type RenderResult =
  | { ok: true; params: Record<string, unknown>; env: Record<string, string>; when: boolean; secretValues: string[] }
  | { ok: false; message: string; secretValues: string[] }

/** What one task's templates may cost together. */
export interface RenderBudget {
  /** Wall-clock time for all of a task's templates. @default 2000 */
  timeMs: number
  /** Characters all rendered templates of a task may produce together. @default 16 Mi */
  outputChars: number
}

export const DEFAULT_RENDER_BUDGET: RenderBudget = { timeMs: 2000, outputChars: 16 * 1024 * 1024 }

export function budgetExceededMessage(budget: RenderBudget): string {
  return `the task's templates took longer than their ${budget.timeMs} ms render budget (one budget for all templates of a task)`
}

/** Rendered `when` values (trimmed, case-insensitive) that skip the task. */
const FALSY_WHEN = new Set(['', 'false', '0', 'null', 'none'])

let engine: ReturnType<typeof createTemplateEngine> | undefined
const parsed = new Map<string, Template[]>()
const PARSE_CACHE_LIMIT = 10_000

export function renderTaskTemplates(templates: TaskTemplates, variables: TemplateVariables, budget: RenderBudget = DEFAULT_RENDER_BUDGET): RenderResult {
  const secrets = lazySecrets(variables.secrets)
  const scope = {
    dag: variables.dag,
    run: variables.run,
    task: variables.task,
    ds: variables.ds,
    ds_nodash: variables.ds_nodash,
    params: variables.params,
    tasks: variables.tasks,
    secrets: secrets.proxy,
  }
  const errors: string[] = []
  const deadline = performance.now() + budget.timeMs
  let outputLeft = budget.outputChars
  let exhausted = false
  const render = (text: string, where: string): string => {
    if (exhausted) return text
    const left = deadline - performance.now()
    if (left <= 0) {
      exhausted = true
      errors.push(`${where}: ${budgetExceededMessage(budget)}`)
      return text
    }
    try {
      const output = renderString(text, scope, left)
      outputLeft -= output.length
      if (outputLeft < 0) {
        exhausted = true
        errors.push(`${where}: the task's rendered templates exceed ${budget.outputChars} characters together`)
        return text
      }
      return output
    } catch (error) {
      if (performance.now() >= deadline) {
        exhausted = true
        errors.push(`${where}: ${budgetExceededMessage(budget)}`)
      } else errors.push(`${where}: ${describeError(error)}`)
      return text
    }
  }

  const literal = new Set(templates.literalParams ?? [])
  const scriptEnv: [string, string][] = []
  const literalValue = (value: unknown, key: string): unknown => {
    if (typeof value !== 'string' || !hasTemplate(value)) return value
    const found = scriptTemplates(value)
    if (!found.ok) {
      errors.push(`params.${key}: ${found.message}`)
      return value
    }
    for (const v of found.variables) scriptEnv.push([v.name, render(v.template, `params.${key}`)])
    return found.script
  }
  const params = Object.fromEntries(
    Object.entries(templates.params ?? {}).map(([key, value]) => [key, literal.has(key) ? literalValue(value, key) : renderValue(value, `params.${key}`, render)]),
  )
  const env: Record<string, string> = {}
  const define = (key: string, value: string): void => {
    Object.defineProperty(env, key, { value, enumerable: true, writable: true, configurable: true })
  }
  for (const [key, value] of Object.entries(templates.env ?? {})) {
    define(key, typeof value === 'string' ? renderIfTemplate(value, `env.${key}`, render) : String(value))
  }
  for (const [key, value] of scriptEnv) define(key, value)
  const when = templates.when === undefined ? true : isTruthyWhen(renderValue(templates.when, 'when', render))

  const secretValues = [...secrets.used.values()]
  if (errors.length > 0) {
    const mask = createMasker(secretValues)
    return { ok: false, message: mask(errors.join('; ')), secretValues }
  }
  return { ok: true, params, env, when, secretValues }
}

/** The decision for a rendered `when`: "", "false", "0", "null", "none" (any case), false, 0 and null skip. */
export function isTruthyWhen(value: unknown): boolean {
  if (value === undefined) return true
  if (value === null || value === false) return false
  if (typeof value === 'number') return value !== 0 && !Number.isNaN(value)
  if (typeof value === 'string') return !FALSY_WHEN.has(value.trim().toLowerCase())
  return true
}

function renderValue(value: unknown, where: string, render: (text: string, where: string) => string): unknown {
  if (typeof value === 'string') return renderIfTemplate(value, where, render)
  if (Array.isArray(value)) return value.map((item, i) => renderValue(item, `${where}[${i}]`, render))
  if (value !== null && typeof value === 'object') {
    // fromEntries defines own properties, so a `__proto__` key stays a plain key.
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, renderValue(item, `${where}.${key}`, render)]))
  }
  return value
}

function renderIfTemplate(text: string, where: string, render: (text: string, where: string) => string): string {
  return hasTemplate(text) ? render(text, where) : text
}

function renderString(text: string, scope: object, renderLimitMs: number): string {
  engine ??= createTemplateEngine()
  let templates = parsed.get(text)
  if (!templates) {
    templates = engine.parse(text)
    if (parsed.size >= PARSE_CACHE_LIMIT) parsed.clear()
    parsed.set(text, templates)
  }
  return String(engine.renderSync(templates, scope, { renderLimit: renderLimitMs }))
}

function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  // The name is never repeated: it may be computed (`secrets[params.x]`, `secrets[secrets.y]`), and a
  // secret value used as a name would leak, upper-cased in CAIRN_SECRET_..., past the masker.
  if (/^undefined variable: secrets\b/.test(message)) {
    return 'a secret it uses is not set (set CAIRN_SECRET_<NAME> with the name in capitals, or add a file named after it to the secrets dir; the name is not shown, as it may be computed from other values)'
  }
  // Liquid appends the position and, on some errors, the offending source lines; keep the first line.
  return message.split('\n')[0]!
}

/**
 * A read-only object whose properties are looked up in the store on first use. It cannot be
 * enumerated, so `{{ secrets }}` or a `for` loop never reveals the names or values of the others.
 */
function lazySecrets(store: SecretStore): { proxy: object; used: Map<string, string> } {
  const used = new Map<string, string>()
  const lookup = (key: string | symbol): string | undefined => {
    if (typeof key !== 'string') return undefined
    const known = used.get(key)
    if (known !== undefined) return known
    const value = store.get(key)
    if (value !== undefined) used.set(key, value)
    return value
  }
  // With ownPropertyOnly (set by createTemplateEngine) Liquid asks hasOwnProperty before it reads a
  // property, so the store is consulted only there. Plain reads answer from what was already
  // loaded: Liquid also probes `next`, `then` and `toLiquid` on every value, and those probes must
  // not turn into secret lookups.
  const proxy = new Proxy(Object.create(null) as object, {
    get: (_target, key) => (key === Symbol.toPrimitive ? refusePrinting : typeof key === 'string' ? used.get(key) : undefined),
    has: (_target, key) => lookup(key) !== undefined,
    getOwnPropertyDescriptor: (_target, key) => {
      const value = lookup(key)
      return value === undefined ? undefined : { value, enumerable: true, configurable: true, writable: false }
    },
    ownKeys: () => [],
    set: () => false,
    defineProperty: () => false,
    deleteProperty: () => false,
    setPrototypeOf: () => false,
  })
  return { proxy, used }
}

function refusePrinting(): never {
  throw new Error('`secrets` cannot be printed as a whole; use secrets.NAME')
}
