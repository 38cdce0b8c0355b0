/**
 * The one sandboxed template engine (LiquidJS): the validator analyses templates with it and the
 * worker renders them with it, so both agree on syntax. Liquid never evaluates JavaScript; file
 * tags (include, render, layout) are removed so templates cannot read the disk, and parse, render
 * and memory limits stop runaway templates.
 */
import { createRequire } from 'node:module'
import type { Liquid } from 'liquidjs'

const requireHere = createRequire(import.meta.url)

const FILE_TAGS = ['include', 'render', 'layout', 'block'] as const
/** Template text Liquid parses at most (longer is a syntax error). */
const PARSE_LIMIT = 64 * 1024

export function createTemplateEngine(): Liquid {
  // Loaded on first use: the validator analyses the usual templates without it (simpleAnalysis).
  const { Liquid } = requireHere('liquidjs') as typeof import('liquidjs')
  const engine = new Liquid({
    strictFilters: true,
    strictVariables: true,
    ownPropertyOnly: true,
    jsTruthy: true,
    relativeReference: false,
    root: [],
    partials: [],
    layouts: [],
    parseLimit: PARSE_LIMIT,
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
  return text.includes('{') && (text.includes('{{') || text.includes('{%'))
}

let shared: Liquid | undefined
const cache = new Map<string, TemplateAnalysis>()
const CACHE_LIMIT = 10_000

export function analyzeTemplate(text: string): TemplateAnalysis {
  const cached = cache.get(text)
  if (cached) return cached
  const result = simpleAnalysis(text) ?? analyzeWithLiquid(text)
  if (cache.size >= CACHE_LIMIT) cache.clear()
  cache.set(text, result)
  return result
}

/** Text plus `{{ name.name... }}` outputs, nothing else that Liquid reads. */
const SIMPLE_OUTPUT = /\{\{ *([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*) *\}\}/g
/** Names Liquid reads as literals, not variables. */
const LITERALS = new Set(['true', 'false', 'nil', 'null', 'empty', 'blank'])

/**
 * The analysis Liquid would give for text whose only Liquid is `{{ a.b.c }}` outputs (what nearly
 * every DAG writes: `{{ ds }}`, `{{ params.x }}`, `{{ tasks.t.outputs.k }}`), without loading and
 * building a Liquid engine. Undefined for anything else: tags, filters, brackets, other braces,
 * carriage returns, characters outside the BMP (where positions could be counted differently).
 */
export function simpleAnalysis(text: string): TemplateAnalysis | undefined {
  if (text.length > PARSE_LIMIT || text.includes('{%') || text.includes('\r') || /[\ud800-\udfff]/.test(text)) return undefined
  // Grouped by first name in order of first appearance, as Liquid's analysis lists them.
  const byRoot = new Map<string, TemplateReference[]>()
  let rest = ''
  let last = 0
  SIMPLE_OUTPUT.lastIndex = 0
  for (let match = SIMPLE_OUTPUT.exec(text); match !== null; match = SIMPLE_OUTPUT.exec(text)) {
    const segments = match[1]!.split('.')
    if (LITERALS.has(segments[0]!)) return undefined
    const at = match.index + match[0].indexOf(match[1]!)
    const lineStart = text.lastIndexOf('\n', at - 1) + 1
    let row = 1
    for (let i = text.indexOf('\n'); i !== -1 && i < at; i = text.indexOf('\n', i + 1)) row++
    const group = byRoot.get(segments[0]!) ?? []
    if (group.length === 0) byRoot.set(segments[0]!, group)
    group.push({ segments, row, col: at - lineStart + 1 })
    rest += text.slice(last, match.index)
    last = match.index + match[0].length
  }
  rest += text.slice(last)
  // Any other brace may be Liquid (or a syntax error, or join an output: {{{ x }}) that only Liquid may judge.
  if (rest.includes('{') || rest.includes('}')) return undefined
  return { ok: true, references: [...byRoot.values()].flat() }
}

/** Liquid's own analysis (exported for the test that holds simpleAnalysis to it). */
export function analyzeWithLiquid(text: string): TemplateAnalysis {
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
