/**
 * The regular-expression engine for patterns users write (`pattern` and `patternProperties` in run
 * parameter definitions). JavaScript's RegExp backtracks: `^(a+)+$` against 32 characters took 12 s
 * of the one thread that also answers /healthz. RE2 (here re2js, pure JavaScript) runs in time
 * linear in the input, and in exchange has no backreferences and no lookaround; patterns using
 * them are refused when the DAG is validated (UNSUPPORTED_PATTERN), never at trigger time.
 *
 * The shape is Ajv's `code.regExp` contract: `(pattern, flags) => { test(string): boolean }`. Only the
 * in-memory Ajv uses it; the standalone validators compiled from schemas/ keep native RegExp, as
 * their patterns are written by us.
 */
import { RE2JS } from 're2js'

export interface LinearRegExp {
  test(text: string): boolean
  toString(): string
}

/** Thrown from inside Ajv's compile, the one place that can only report by throwing. */
export class UnsupportedPatternError extends Error {
  override name = 'UnsupportedPatternError'
}

export function linearRegExp(pattern: string, flags: string): LinearRegExp {
  // A pattern JavaScript itself rejects is simply invalid; report it as JavaScript would.
  // (Compiling a RegExp never runs it, so this costs no backtracking.)
  new RegExp(pattern, flags)
  let compiled: RE2JS
  try {
    compiled = RE2JS.compile(RE2JS.translateRegExp(pattern), flags.includes('i') ? RE2JS.CASE_INSENSITIVE : 0)
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new UnsupportedPatternError(
      `pattern ${JSON.stringify(pattern)} cannot run in linear time (${reason}); ` +
        'backreferences (\\1), lookahead ((?=, (?!) and lookbehind ((?<=, (?<!) are not supported',
    )
  }
  return { test: (text) => compiled.test(text), toString: () => `/${pattern}/${flags}` }
}
// Ajv writes `code` into standalone validator source; this engine is never used for standalone code.
linearRegExp.code = 'linearRegExp'
