/**
 * Validates one file's bytes: YAML with resource limits, then JSON Schema, then meaning. Pure: no
 * file system access, so the loader, the CLI, the scheduler and the tests all share it.
 */
import type { Diagnostic } from './diagnostics.ts'
import { compareDiagnostics, formatPath, hasErrors } from './diagnostics.ts'
import { createRequire } from 'node:module'
import type { Json, LoadedYaml, PathSegment } from './yaml-load.ts'
import { schemas } from './schemas.ts'
import { loadYamlFast, loadYamlFastText } from './yaml-fast.ts'
import type { ErrorObject } from 'ajv'
import { checkDagSemantics } from './dag-semantics.ts'
import type { DeploymentNames, SemanticProblem } from './dag-semantics.ts'

export type FileKind = 'dag' | 'feature_view' | 'config'

export interface ValidateOptions {
  /** Force the kind (cairn.yaml); otherwise DAG unless the file has a top-level `feature_view`. */
  kind?: FileKind
  /** Pools and clusters of cairn.yaml, to check the names DAGs use. */
  names?: DeploymentNames
}

export interface FileValidation {
  file: string
  kind: FileKind | undefined
  /** The parsed document, present when it could be read as a mapping. */
  value: { [key: string]: Json } | undefined
  diagnostics: Diagnostic[]
  ok: boolean
  /** Source position of a path, for later passes that span files (duplicate ids). */
  locate(path: readonly PathSegment[], part?: 'key' | 'value'): { line: number; column: number }
}

type Mapping = { [key: string]: Json }

const requireHere = createRequire(import.meta.url)
let yamlLoad: typeof import('./yaml-load.ts') | undefined

/**
 * The careful parser (yaml-load.ts and the `yaml` package, seventy modules) is loaded the first time
 * a file needs it: a run over valid files, the common case, never does.
 */
export function loadYaml(bytes: Uint8Array): ReturnType<typeof import('./yaml-load.ts').loadYaml> {
  yamlLoad ??= requireHere('./yaml-load.ts') as typeof import('./yaml-load.ts')
  return yamlLoad.loadYaml(bytes)
}

/** Loaded when needed, as the careful parser: messages for schema errors, and the checks of cairn.yaml. */
let schemaErrorsModule: typeof import('./schema-errors.ts') | undefined
let configSemanticsModule: typeof import('../config/config-semantics.ts') | undefined
const checkConfigSemantics = (value: Json): SemanticProblem[] =>
  (configSemanticsModule ??= requireHere('../config/config-semantics.ts') as typeof import('../config/config-semantics.ts')).checkConfigSemantics(value)
const isMapping = (value: Json): value is Mapping => value !== null && typeof value === 'object' && !Array.isArray(value)

export function validateSource(file: string, bytes: Uint8Array, options: ValidateOptions = {}): FileValidation {
  return validateRead(file, loadYamlFast(bytes), () => bytes, options)
}

/**
 * validateSource for a file read as text: valid UTF-8 (the reader's text holds no U+FFFD), a byte
 * order mark still at its start. Reading a file as text skips a copy and a decoding pass; when the
 * careful path is needed it gets the file's exact bytes back from the text.
 */
export function validateText(file: string, text: string, options: ValidateOptions = {}): FileValidation {
  return validateRead(file, loadYamlFastText(text), () => Buffer.from(text, 'utf8'), options)
}

function validateRead(file: string, fast: Json | undefined, readBytes: () => Uint8Array, options: ValidateOptions): FileValidation {
  let earlier: { value: Mapping; checked: CheckedValue } | undefined
  if (fast !== undefined && isMapping(fast)) {
    const checked = checkValue(fast, options)
    earlier = { value: fast, checked }
    if (checked.clean) {
      let careful: LoadedYaml | undefined
      const locate = (path: readonly PathSegment[], part?: 'key' | 'value') => {
        if (!careful) {
          const loaded = loadYaml(readBytes())
          if (!loaded.ok) return { line: 1, column: 1 }
          careful = loaded.yaml
        }
        return careful.locate(path, part)
      }
      return { file, kind: checked.kind, value: fast, diagnostics: [], ok: true, locate }
    }
  }
  return validateCarefully(file, readBytes(), options, earlier)
}

interface CheckedValue {
  kind: FileKind
  clean: boolean
  schemaErrors: ErrorObject[]
  semantic: SemanticProblem[]
}

function checkValue(value: Mapping, options: ValidateOptions): CheckedValue {
  const kind: FileKind = options.kind ?? (Object.hasOwn(value, 'feature_view') ? 'feature_view' : 'dag')
  const compiled = schemas()
  const validate = kind === 'dag' ? compiled.dag : kind === 'feature_view' ? compiled.featureView : compiled.config
  const schemaErrors = validate(value) ? [] : [...(validate.errors ?? [])]
  const semantic: SemanticProblem[] = kind === 'dag' ? checkDagSemantics(value, options.names) : kind === 'config' ? checkConfigSemantics(value) : []
  return { kind, clean: schemaErrors.length === 0 && semantic.length === 0, schemaErrors, semantic }
}

/** The careful path: the `yaml` AST, every limit, and diagnostics placed on their nodes. */
function validateCarefully(file: string, bytes: Uint8Array, options: ValidateOptions, earlier?: { value: Mapping; checked: CheckedValue }): FileValidation {
  const diagnostics: Diagnostic[] = []
  const start = () => ({ line: 1, column: 1 })
  const loaded = loadYaml(bytes)
  if (!loaded.ok) {
    for (const p of loaded.problems) diagnostics.push({ file, line: p.position.line, column: p.position.column, path: formatPath(p.path), code: p.code, message: p.message, severity: 'error' })
    return { file, kind: options.kind, value: undefined, diagnostics: diagnostics.sort(compareDiagnostics), ok: false, locate: start }
  }
  const { yaml } = loaded
  const value = yaml.value
  if (!isMapping(value)) {
    const found = Array.isArray(value) ? 'a list' : value === null ? 'null' : `a ${typeof value}`
    const at = yaml.locate([])
    diagnostics.push({ file, line: at.line, column: at.column, path: '', code: 'NOT_A_MAPPING', message: `the document must be a mapping (such as \`dag: my_dag\`), not ${found}`, severity: 'error' })
    return { file, kind: options.kind, value: undefined, diagnostics, ok: false, locate: yaml.locate }
  }
  // The fast path already checked this document when both parsers read it the same (they do for
  // every text the fast path accepts); only the positions are new.
  const checked = earlier && JSON.stringify(earlier.value) === JSON.stringify(value) ? earlier.checked : checkValue(value, options)
  const add = (code: Diagnostic['code'], message: string, path: PathSegment[], position: { line: number; column: number }, severity: Diagnostic['severity'] = 'error'): void => {
    diagnostics.push({ file, line: position.line, column: position.column, path: formatPath(path), code, message, severity })
  }
  schemaErrorsModule ??= requireHere('./schema-errors.ts') as typeof import('./schema-errors.ts')
  for (const p of schemaErrorsModule.schemaProblems(checked.schemaErrors, value, yaml.locate)) add(p.code, p.message, p.path, p.position)
  for (const p of checked.semantic) {
    const position = p.inString ? positionInString(yaml, p.path, p.inString) : yaml.locate(p.path, p.part)
    add(p.code, p.message, p.path, position, p.severity)
  }
  diagnostics.sort(compareDiagnostics)
  return { file, kind: checked.kind, value, diagnostics, ok: !hasErrors(diagnostics), locate: yaml.locate }
}

/**
 * Maps a row/column inside a string value onto the file. Finds the text at that point of the value
 * in the scalar's source (exact for plain and simply quoted strings, and for block scalars whose
 * lines are unchanged); falls back to the scalar's start.
 */
function positionInString(yaml: LoadedYaml, path: PathSegment[], at: { row: number; col: number }): { line: number; column: number } {
  const start = yaml.locate(path)
  const source = yaml.sourceOf(path)
  const value = valueAt(yaml.value, path)
  if (!source || typeof value !== 'string') return start
  const lines = value.split('\n')
  const line = lines[at.row - 1]
  if (line === undefined) return start
  const needle = line.slice(at.col - 1, at.col - 1 + 24)
  let index = -1
  if (needle.length > 0) {
    // The n-th occurrence of the line inside the source, so repeated text maps to the right place.
    const lineIndex = source.text.indexOf(line)
    index = lineIndex >= 0 ? lineIndex + at.col - 1 : source.text.indexOf(needle)
  }
  return index >= 0 ? yaml.positionAt(source.offset + index) : start
}

function valueAt(root: Json, path: readonly PathSegment[]): Json | undefined {
  let current: Json | undefined = root
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return undefined
    current = Array.isArray(current) ? (typeof segment === 'number' ? current[segment] : undefined) : Object.hasOwn(current, segment) ? current[segment] : undefined
  }
  return current
}
