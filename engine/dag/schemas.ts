/**
 * Loads every JSON Schema under schemas/ and compiles each one once per process with Ajv.
 * The operator params schemas come from the operator registry, so a new operator is validated
 * as soon as it is registered.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Script } from 'node:vm'
import { threadId } from 'node:worker_threads'
import type { Ajv2020, ValidateFunction, AnySchema } from 'ajv/dist/2020.js'
import type { RegExpEngine } from 'ajv/dist/types/index.js'
import { OPERATORS } from '../../operators/index.ts'

const SCHEMA_DIR = new URL('../../schemas/', import.meta.url)
const CACHE_DIR = fileURLToPath(new URL('../../node_modules/.cache/cairn/', import.meta.url))
const requireFromHere = createRequire(import.meta.url)
const AJV_VERSION = (requireFromHere('ajv/package.json') as { version: string }).version
type StandaloneCode = (ajv: Ajv2020, refs: Record<string, string>) => string

/**
 * Ajv itself (about a hundred modules) is loaded only to compile: the CLI validating files with cached
 * validators never needs it.
 */
function loadAjv(): { Ajv2020: typeof Ajv2020; addFormats: (ajv: Ajv2020) => Ajv2020; standaloneCode: StandaloneCode } {
  const unwrap = <T>(module: unknown): T => ((module as { default?: T }).default ?? module) as T
  return {
    Ajv2020: (requireFromHere('ajv/dist/2020.js') as { Ajv2020: typeof Ajv2020 }).Ajv2020,
    addFormats: unwrap(requireFromHere('ajv-formats')),
    standaloneCode: unwrap(requireFromHere('ajv/dist/standalone/index.js')),
  }
}

export function readSchema(relative: string): AnySchema {
  return JSON.parse(readFileSync(new URL(relative, SCHEMA_DIR), 'utf8')) as AnySchema
}

export interface CompiledSchemas {
  dag: ValidateFunction
  featureView: ValidateFunction
  config: ValidateFunction
}

let compiled: CompiledSchemas | undefined

export interface AjvOptions {
  /** Emit standalone validator source (the file schemas' cache). @default false */
  standalone?: boolean
  /** The engine compiling `pattern` and `patternProperties`. @default native RegExp */
  regExp?: RegExpEngine
}

export function createAjv(options: AjvOptions = {}): Ajv2020 {
  const { Ajv2020, addFormats } = loadAjv()
  // verbose: errors carry their schema, used to list allowed keys and enum values in messages.
  const ajv = new Ajv2020({
    allErrors: true,
    strict: true,
    discriminator: true,
    verbose: true,
    allowUnionTypes: true,
    code: { ...(options.standalone ? { source: true } : {}), ...(options.regExp ? { regExp: options.regExp } : {}) },
  })
  // The file schemas use no `format`; run parameter definitions may (date, uri, ...).
  if (!options.standalone) addFormats(ajv)
  return ajv
}

export function schemas(): CompiledSchemas {
  compiled ??= loadOrCompile()
  return compiled
}

/**
 * Compiling the schemas costs more than validating a hundred files, and every CLI call would pay
 * it. So the compiled validators are kept as Ajv standalone code in node_modules/.cache/cairn,
 * keyed by a hash of every schema and the Ajv version, and loaded from there when present. When
 * the cache cannot be read or written, the schemas are compiled in memory as usual.
 */
/**
 * 64 bits of two FNV-1a hashes of the text (with different offsets), as hex. A cache key, not a
 * digest: loading node:crypto to name a cache file cost the CLI more than reading the file.
 */
function cacheKey(text: string): string {
  let a = 0x811c9dc5
  let b = 0x01000193 ^ text.length
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    a = Math.imul(a ^ ch, 0x01000193)
    b = Math.imul(b ^ ch, 0x5bd1e995) ^ (b >>> 15)
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0')
}

/** The schemas of this checkout and the cache file they compile to (named by their hash: checkouts sharing node_modules keep one file each). */
function schemaSources() {
  const sources = {
    dag: readSchema('dag.schema.json'),
    featureView: readSchema('feature-view.schema.json'),
    config: readSchema('config.schema.json'),
  }
  const operators = Object.values(OPERATORS).map((o) => [`operators/${o.type}.params.schema.json`, o.paramsSchema] as const)
  const hash = cacheKey(JSON.stringify([AJV_VERSION, sources, operators]))
  return { sources, operators, file: join(CACHE_DIR, `schemas-${hash}.cjs`) }
}

/** The standalone validators' cache file of this checkout's schemas (written by the first `schemas()`). */
export function standaloneCacheFile(): string {
  return schemaSources().file
}

function loadOrCompile(): CompiledSchemas {
  const { sources, operators, file } = schemaSources()
  if (existsSync(file)) {
    try {
      return loadStandalone(file)
    } catch {
      // A damaged cache file: compile again below and overwrite it.
    }
  }
  const ajv = createAjv({ standalone: true })
  for (const [key, schema] of operators) ajv.addSchema(schema as AnySchema, key)
  ajv.addSchema(sources.dag, 'dag')
  ajv.addSchema(sources.featureView, 'featureView')
  ajv.addSchema(sources.config, 'config')
  const result: CompiledSchemas = { dag: ajv.getSchema('dag')!, featureView: ajv.getSchema('featureView')!, config: ajv.getSchema('config')! }
  try {
    mkdirSync(CACHE_DIR, { recursive: true })
    const temporary = `${file}.${process.pid}-${threadId}.tmp`
    writeFileSync(temporary, loadAjv().standaloneCode(ajv, { dag: 'dag', featureView: 'featureView', config: 'config' }))
    renameSync(temporary, file)
  } catch {
    // Read-only install: fine, the in-memory validators serve this process.
  }
  return result
}

/**
 * Loads the cached standalone validators together with V8's compiled code for them. V8 compiles a
 * function when it is first called, and these are large (the task validator alone is about 190 KB
 * of source): compiling them made the first file of every `cairn validate` cost some 25 ms. Node's
 * compile cache cannot help, as it is written when a module is compiled, before any of its
 * functions has run. So the first process that loads a standalone file compiles every validator in
 * it (by calling each once, on nothing) and keeps V8's code cache beside it; later processes start
 * with compiled code. A cache V8 refuses (another V8 version or flags) is simply written again.
 */
export function loadStandalone(file: string): CompiledSchemas {
  const source = readFileSync(file, 'utf8')
  const validators = [...new Set(Array.from(source.matchAll(/\bfunction (validate\d+)\(/g), (m) => m[1]!))]
  const wrapped = `(function (exports, require, module) {${source}\n;return [${validators.join(', ')}]\n})`
  const codeFile = codeCacheFile(file)
  let cachedData: Buffer | undefined
  try {
    cachedData = readFileSync(codeFile)
  } catch {
    // Not written yet.
  }
  const script = new Script(wrapped, { filename: file, ...(cachedData ? { cachedData } : {}) })
  const module = { exports: {} as CompiledSchemas }
  const run = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: object) => ((data: unknown) => boolean)[]
  const functions = run(module.exports, createRequire(file), module)
  if (cachedData === undefined || script.cachedDataRejected === true) {
    try {
      for (const validate of functions) validate(null)
      const temporary = `${codeFile}.${process.pid}-${threadId}.tmp`
      writeFileSync(temporary, script.createCachedData())
      renameSync(temporary, codeFile)
    } catch {
      // Read-only install: this process compiles as it goes.
    }
  }
  return module.exports
}

/** Where loadStandalone keeps V8's code for a standalone file (per V8 version). */
export function codeCacheFile(file: string): string {
  return `${file.slice(0, -'.cjs'.length)}.v8-${process.versions.v8}.cache`
}
