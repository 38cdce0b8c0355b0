/**
 * How ingest steps report trouble: a value, never an exception used for control flow. A step returns
 * `IngestFailure` and the operator turns it into the attempt's result; anything thrown is a bug or
 * an I/O error and becomes a retryable infrastructure failure at the top.
 */
import type { FailureKind } from '../define.ts'

export interface IngestFailure {
  failed: true
  kind: FailureKind
  retryable: boolean
  message: string
}

export function failure(kind: FailureKind, retryable: boolean, message: string): IngestFailure {
  return { failed: true, kind, retryable, message }
}

/** The params make no sense once rendered (unknown column, path outside the allowed folders): never retried. */
export const invalid = (message: string): IngestFailure => failure('invalid_params', false, message)
/** The data broke the task's rules (bad rows, expectations): the same data fails the same way, so no retry. */
export const dataInvalid = (message: string): IngestFailure => failure('data_invalid', false, message)
/** The source could not be reached or dropped us (5xx, timeout, lost connection): a retry may succeed. */
export const unreachable = (message: string): IngestFailure => failure('infrastructure', true, message)

export function isFailure(value: unknown): value is IngestFailure {
  return typeof value === 'object' && value !== null && (value as { failed?: unknown }).failed === true
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
