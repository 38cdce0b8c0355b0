import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { retryDelayMs, shouldRetry } from '../../engine/state/retry.ts';

const HOUR = 3_600_000;

describe('retryDelayMs', () => {
  it('fixed: the same delay for every attempt, not capped', () => {
    for (const attempt of [1, 2, 5, 50]) {
      assert.equal(retryDelayMs({ attempt, retryDelayMs: 30_000, backoff: 'fixed', maxRetryDelayMs: HOUR }), 30_000);
    }
    assert.equal(retryDelayMs({ attempt: 3, retryDelayMs: 2 * HOUR, backoff: 'fixed', maxRetryDelayMs: HOUR }), 2 * HOUR);
  });

  it('exponential: doubles from the configured delay after each failed attempt', () => {
    const got = [1, 2, 3, 4, 5].map((attempt) =>
      retryDelayMs({ attempt, retryDelayMs: 30_000, backoff: 'exponential', maxRetryDelayMs: HOUR }),
    );
    assert.deepEqual(got, [30_000, 60_000, 120_000, 240_000, 480_000]);
  });

  it('exponential: capped by maxRetryDelayMs', () => {
    const at = (attempt: number) =>
      retryDelayMs({ attempt, retryDelayMs: 30_000, backoff: 'exponential', maxRetryDelayMs: HOUR });
    assert.equal(at(7), 1_920_000); // 30s * 64, under the cap
    assert.equal(at(8), HOUR); // 30s * 128 = 64 min, capped
    assert.equal(at(2_000), HOUR, '2^1999 overflows to Infinity and is still capped');
    assert.equal(
      retryDelayMs({ attempt: 1, retryDelayMs: 2 * HOUR, backoff: 'exponential', maxRetryDelayMs: HOUR }),
      HOUR,
      'a first delay above the cap is capped too',
    );
  });

  it('exponential: a zero delay stays zero for any attempt', () => {
    assert.equal(retryDelayMs({ attempt: 2_000, retryDelayMs: 0, backoff: 'exponential', maxRetryDelayMs: HOUR }), 0);
  });

  it('refuses nonsense input', () => {
    const ok = { attempt: 1, retryDelayMs: 1000, backoff: 'exponential', maxRetryDelayMs: HOUR } as const;
    for (const attempt of [0, -1, 1.5, Number.NaN]) assert.throws(() => retryDelayMs({ ...ok, attempt }), RangeError);
    for (const d of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => retryDelayMs({ ...ok, retryDelayMs: d }), RangeError);
      assert.throws(() => retryDelayMs({ ...ok, maxRetryDelayMs: d }), RangeError);
    }
  });
});

describe('shouldRetry', () => {
  it('retries: 0 means a single attempt', () => {
    assert.equal(shouldRetry({ attempt: 1, retries: 0, retryable: true }), false);
  });

  it('retries: 2 means at most three attempts', () => {
    const got = [1, 2, 3, 4].map((attempt) => shouldRetry({ attempt, retries: 2, retryable: true }));
    assert.deepEqual(got, [true, true, false, false]);
  });

  it('never retries a failure marked not retryable', () => {
    assert.equal(shouldRetry({ attempt: 1, retries: 5, retryable: false }), false);
  });

  it('refuses nonsense input', () => {
    assert.throws(() => shouldRetry({ attempt: 0, retries: 1, retryable: true }), RangeError);
    assert.throws(() => shouldRetry({ attempt: 1, retries: -1, retryable: true }), RangeError);
    assert.throws(() => shouldRetry({ attempt: 1, retries: 1.5, retryable: true }), RangeError);
  });
});
