/** Durations as written in DAG files: 500ms, 30s, 5m, 2h, 1d, or a sum such as 1h30m. */
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
const WHOLE = /^(?:\d+(?:ms|s|m|h|d))+$/
const PART = /(\d+)(ms|s|m|h|d)/g

/** Milliseconds, or undefined when `text` is not a duration. */
export function parseDuration(text: string): number | undefined {
  if (!WHOLE.test(text)) return undefined
  let total = 0
  for (const [, amount, unit] of text.matchAll(PART)) total += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS]
  return Number.isSafeInteger(total) ? total : undefined
}
