/**
 * The one sandboxed template engine (LiquidJS): the validator analyses templates with it and the
 * worker renders them with it, so both agree on syntax. Liquid never evaluates JavaScript; file
 * tags (include, render, layout) are removed so templates cannot read the disk, and parse, render
 * and memory limits stop runaway templates.
 */
import { Liquid } from 'liquidjs'

const FILE_TAGS = ['include', 'render', 'layout', 'block'] as const

export function createTemplateEngine(): Liquid {
  const engine = new Liquid({
    strictFilters: true,
    strictVariables: true,
    ownPropertyOnly: true,
    jsTruthy: true,
    relativeReference: false,
    root: [],
    partials: [],
    layouts: [],
    parseLimit: 64 * 1024,
    renderLimit: 1000,
    memoryLimit: 16 * 1024 * 1024,
  })
  for (const tag of FILE_TAGS) delete engine.tags[tag]
  return engine
}

export interface TemplateReference {
  segments: (string | number)[]
  /** 1-based row and column of the reference inside the template text. */
  row: number
  col: number
}

export type TemplateAnalysis =
  | { ok: true; references: TemplateReference[] }
  | { ok: false; message: string; row: number; col: number }

/** Quick test so the common case (plain strings) never reaches the parser. */
export function hasTemplate(text: string): boolean {
  return text.includes('{{') || text.includes('{%')
}

let shared: Liquid | undefined
const cache = new Map<string, TemplateAnalysis>()
const CACHE_LIMIT = 10_000

export function analyzeTemplate(text: string): TemplateAnalysis {
  const cached = cache.get(text)
  if (cached) return cached
  shared ??= createTemplateEngine()
  let result: TemplateAnalysis
  try {
    const parsed = shared.parse(text)
    const analysis = shared.analyzeSync(parsed, { partials: false })
    const references: TemplateReference[] = []
    for (const variables of Object.values(analysis.globals)) {
      for (const variable of variables) {
        references.push({ segments: variable.segments.map(segmentValue), row: variable.location.row, col: variable.location.col })
      }
    }
    result = { ok: true, references }
  } catch (error) {
    result = syntaxError(error)
  }
  if (cache.size >= CACHE_LIMIT) cache.clear()
  cache.set(text, result)
  return result
}

function segmentValue(segment: unknown): string | number {
  if (typeof segment === 'string' || typeof segment === 'number') return segment
  // A computed segment (tasks[params.x]) cannot be checked statically; keep it visible in messages.
  return String(segment)
}

function syntaxError(error: unknown): TemplateAnalysis {
  const raw = error instanceof Error ? error.message : String(error)
  const match = /, line:(\d+), col:(\d+)$/.exec(raw)
  const message = raw.replace(/, line:\d+, col:\d+$/, '').replace(/\n[\s\S]*$/, '')
  return { ok: false, message, row: match ? Number(match[1]) : 1, col: match ? Number(match[2]) : 1 }
}
