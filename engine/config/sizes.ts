/** Sizes in cairn.yaml: a number of bytes, or a string such as "512KB", "50MB", "1GB" (units of 1024). */

const UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }

/** The least workers.max_log_bytes accepted: below it, a line or two would fill the whole log. */
export const MIN_LOG_BYTES = 64 * 1024

/** The pattern schemas/config.schema.json gives for `$defs/size` strings. */
const SIZE_PATTERN = /^([0-9]+) ?(B|KB|MB|GB)$/

/** Bytes of a size the schema accepted (number or string); throws on anything else. */
export function parseSize(value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`size ${value} is not a whole number of bytes`)
    return value
  }
  const match = SIZE_PATTERN.exec(value)
  if (!match) throw new Error(`size "${value}" is not a number of bytes or a number with B, KB, MB or GB`)
  return Number(match[1]) * UNITS[match[2]!]!
}
