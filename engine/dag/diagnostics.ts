import type { ErrorCode } from '../errors.ts'

export type Severity = 'error' | 'warning'

/** One problem found in one file, at the 1-based line and column of the offending YAML node. */
export interface Diagnostic {
  file: string
  line: number
  column: number
  /** Where in the document, as dotted keys: `tasks.train.params.epochs`. Empty for the whole file. */
  path: string
  code: ErrorCode
  message: string
  severity: Severity
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.column}: ${d.severity} ${d.code}: ${d.message}`
}

/** Stable order: by file, then position, then code — so output diffs well between runs. */
export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1
  return a.line - b.line || a.column - b.column || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0)
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error')
}

/** Joins YAML path segments as users read them: `tasks.train.depends_on[1]`. */
export function formatPath(segments: readonly (string | number)[]): string {
  let out = ''
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`
    else out += out === '' ? segment : `.${segment}`
  }
  return out
}
