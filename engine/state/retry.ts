// Retry decisions (SPEC section 1 `defaults.retries`, `retry_delay`, `retry_backoff`).
// Pure: the caller supplies the attempt number and the failure's `retryable` flag
// (false for e.g. a gate not met), and adds the delay to its own clock.

const RETRY_BACKOFFS = { fixed: 'fixed', exponential: 'exponential' } as const;
export type RetryBackoff = (typeof RETRY_BACKOFFS)[keyof typeof RETRY_BACKOFFS];

export interface RetryDelayInput {
  /** The attempt that just failed, 1-based. */
  attempt: number;
  /** The configured `retry_delay`, in milliseconds. */
  retryDelayMs: number;
  backoff: RetryBackoff;
  /** The configured `max_retry_delay`; caps exponential backoff only (as in Airflow). */
  maxRetryDelayMs: number;
}

function assertAttempt(attempt: number): void {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`attempt must be an integer >= 1, got ${attempt}`);
  }
}

function assertDuration(name: string, ms: number): void {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`${name} must be a finite number >= 0, got ${ms}`);
}

/**
 * How long to wait before the next attempt. Fixed: always `retryDelayMs` (the user
 * chose it explicitly, so it is not capped). Exponential: `retryDelayMs * 2^(attempt-1)`,
 * capped by `maxRetryDelayMs`. No jitter, so the result is reproducible in tests.
 */
export function retryDelayMs(input: RetryDelayInput): number {
  assertAttempt(input.attempt);
  assertDuration('retryDelayMs', input.retryDelayMs);
  assertDuration('maxRetryDelayMs', input.maxRetryDelayMs);
  if (input.backoff === 'fixed') return input.retryDelayMs;
  // Guard 0 * 2^n: for large attempts 2^n is Infinity and 0 * Infinity is NaN.
  if (input.retryDelayMs === 0) return 0;
  return Math.min(input.maxRetryDelayMs, input.retryDelayMs * 2 ** (input.attempt - 1));
}

export interface ShouldRetryInput {
  /** The attempt that just failed, 1-based. */
  attempt: number;
  /** Retries allowed beyond the first attempt: `retries: 2` means at most 3 attempts. */
  retries: number;
  /** False for failures that retrying cannot fix (a gate not met, invalid params). */
  retryable: boolean;
}

export function shouldRetry(input: ShouldRetryInput): boolean {
  assertAttempt(input.attempt);
  if (!Number.isInteger(input.retries) || input.retries < 0) {
    throw new RangeError(`retries must be an integer >= 0, got ${input.retries}`);
  }
  return input.retryable && input.attempt <= input.retries;
}
