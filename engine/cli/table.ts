/** Plain-text tables and values for the listing commands (their `--format json` is in json-shapes.ts). */

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    headers
      .map((_, i) => (i === headers.length - 1 ? (cells[i] ?? '') : (cells[i] ?? '').padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(headers), ...rows.map(line)]
}

/** `2026-01-01T02:00:00Z` (UTC, whole seconds), `-` until known. */
export function formatTime(date: Date | null | undefined): string {
  return date ? `${date.toISOString().slice(0, 19)}Z` : '-'
}

/** `850ms`, `12.3s`, `4m05s`, `2h03m`; `-` when the span is not known (yet). */
export function formatDuration(start: Date | null | undefined, end: Date | null | undefined): string {
  if (!start || !end) return '-'
  const ms = Math.max(0, end.getTime() - start.getTime())
  if (ms < 1000) return `${ms}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`
  const seconds = Math.floor(ms / 1000)
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`
}

/** One line, at most `max` characters: table cells must not break the alignment. */
export function oneLine(text: string | null | undefined, max = 80): string {
  if (!text) return ''
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}
