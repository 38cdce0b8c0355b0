/**
 * How reading a source (and the ingest steps around it) reports trouble: a value, never an exception
 * used for control flow. A step returns `ReadFailure`; the ingest operator turns it into the attempt's
 * result and `cairn datasets import` into its message and exit code. Anything thrown is a bug or an
 * I/O error (a retryable infrastructure failure for a task).
 */

/** The task failure kinds (operators/define.ts) a data step can end in. */
export type FailureKind = 'invalid_params' | 'data_invalid' | 'infrastructure' | 'cancelled'

export interface ReadFailure {
  failed: true
  kind: FailureKind
  retryable: boolean
  message: string
}

export function failure(kind: FailureKind, retryable: boolean, message: string): ReadFailure {
  return { failed: true, kind, retryable, message }
}

/** The params make no sense once rendered (unknown column, path outside the allowed folders): never retried. */
export const invalid = (message: string): ReadFailure => failure('invalid_params', false, message)
/** The data broke the task's rules (bad rows, expectations): the same data fails the same way, so no retry. */
export const dataInvalid = (message: string): ReadFailure => failure('data_invalid', false, message)
/** The source could not be reached or dropped us (5xx, timeout, lost connection): a retry may succeed. */
export const unreachable = (message: string): ReadFailure => failure('infrastructure', true, message)

export function isFailure(value: unknown): value is ReadFailure {
  return typeof value === 'object' && value !== null && (value as { failed?: unknown }).failed === true
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
