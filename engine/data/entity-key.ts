/**
 * The canonical text of an entity key, shared by the online store's writes and reads, so that a key
 * typed on the command line ("42", "2026-01-01T00:00:00Z") finds the row materialized from an
 * integer or timestamp column. Each value maps to one text, whatever its JSON or JS type:
 *
 *   integers and numbers   their shortest decimal form (42, 42n, "42" -> "42"; 1.5 -> "1.5")
 *   booleans               "true" / "false"
 *   timestamps             ISO-8601 UTC with milliseconds (Date, or a string with a time and an offset/Z)
 *   strings                themselves (other than the timestamp form above)
 *
 * The key is the JSON array of those texts in the view's entity order. A null key part never
 * matches (null entities have no online row).
 */

/** An ISO-8601 date-time with an explicit offset or Z, or without one (UTC): `T` or a space between. */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$/i

/** The canonical text of one key value, or undefined for null/undefined (no match possible). */
export function canonicalKeyPart(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString()
  if (typeof value === 'string') {
    if (ISO_INSTANT.test(value)) {
      const withZone = /(Z|[+-]\d{2}(:?\d{2})?)$/i.test(value) ? value : `${value}Z`
      const ms = Date.parse(withZone.replace(' ', 'T'))
      if (!Number.isNaN(ms)) return new Date(ms).toISOString()
    }
    return value
  }
  return JSON.stringify(value)
}

/** The key of an entity given its values in entity-column order; undefined when a part is null. */
export function canonicalEntityKey(values: readonly unknown[]): string | undefined {
  const parts: string[] = []
  for (const v of values) {
    const part = canonicalKeyPart(v)
    if (part === undefined) return undefined
    parts.push(part)
  }
  return JSON.stringify(parts)
}
