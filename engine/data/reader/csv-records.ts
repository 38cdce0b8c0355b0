/**
 * A CSV record scanner in the dialect the reader is given (delimiter, `"` quotes doubled inside
 * quoted fields): the header's fields, and the line number and text of chosen data records. DuckDB
 * reports the line of the rows it rejects itself but not of rows kept, so a row refused later (a
 * timestamp that does not parse, an empty non-nullable value) is located here, only when there is one.
 */
import { createReadStream } from 'node:fs'

const QUOTE = 0x22
const LF = 0x0a
const CR = 0x0d
/** Longest record text kept for a bad row. */
const TEXT_MAX = 64 * 1024

export interface RecordSpot {
  line: number
  text: string
}

/**
 * Calls `visit(startLine, text, startRecordLine)` for each non-empty record in file order until it
 * returns false. `text` is the record without its line ending, cut at TEXT_MAX bytes.
 * `startRecordLine` counts lines as DuckDB's reject tables do: a record spanning several lines
 * (a quoted field holding a line break) counts as one.
 */
export async function scanRecords(file: string, visit: (startLine: number, text: () => string, startRecordLine: number) => boolean): Promise<void> {
  let line = 1
  let start = 1
  let recordLine = 1
  let recordStart = 1
  let inQuote = false
  let pending: Buffer[] = []
  let pendingBytes = 0
  let afterCr = false
  const keep = (chunk: Buffer) => {
    if (pendingBytes >= TEXT_MAX) return
    const part = chunk.subarray(0, TEXT_MAX - pendingBytes)
    pending.push(part)
    pendingBytes += part.length
  }
  const emit = (): boolean => {
    const parts = pending
    const size = pendingBytes
    pending = []
    pendingBytes = 0
    if (size === 0) return true
    let text: string | undefined
    return visit(start, () => (text ??= Buffer.concat(parts).toString('utf8').replace(/\r$/, '')), recordStart)
  }
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    let from = 0
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!
      if (byte === QUOTE) inQuote = !inQuote
      else if (!inQuote && (byte === LF || byte === CR)) {
        if (byte === LF && afterCr) {
          afterCr = false
          from = i + 1
          continue
        }
        keep(chunk.subarray(from, i))
        from = i + 1
        line++
        recordLine++
        afterCr = byte === CR
        if (!emit()) return
        start = line
        recordStart = recordLine
        continue
      } else if (byte === LF) line++
      afterCr = false
    }
    keep(chunk.subarray(from))
  }
  emit()
}

/** The fields of the first record (the header), unquoted. */
export async function readHeader(file: string, delimiter: string): Promise<string[] | undefined> {
  let header: string | undefined
  await scanRecords(file, (_line, text) => {
    header = text().replace(/^\uFEFF/, '')
    return false
  })
  return header === undefined ? undefined : splitRecord(header, delimiter)
}

export function splitRecord(text: string, delimiter: string): string[] {
  const fields: string[] = []
  let field = ''
  let inQuote = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (inQuote) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"'
        i++
      } else if (c === '"') inQuote = false
      else field += c
    } else if (c === '"') inQuote = true
    else if (c === delimiter) {
      fields.push(field)
      field = ''
    } else field += c
  }
  fields.push(field)
  return fields
}

/**
 * Line and text of the data records with the given ordinals (0-based, counting only the records
 * the reader kept: records DuckDB rejected, named by its own line count, are skipped, as is the
 * header), and the file line of each rejected record.
 */
export async function locateRecords(file: string, header: boolean, rejected: ReadonlySet<number>, ordinals: readonly number[]): Promise<{ kept: Map<number, RecordSpot>; rejectedAt: Map<number, number> }> {
  const wanted = new Set(ordinals)
  const kept = new Map<number, RecordSpot>()
  const rejectedAt = new Map<number, number>()
  if (wanted.size === 0 && rejected.size === 0) return { kept, rejectedAt }
  let skipHeader = header
  let ordinal = 0
  await scanRecords(file, (line, text, recordLine) => {
    if (skipHeader) {
      skipHeader = false
      return true
    }
    if (rejected.has(recordLine)) rejectedAt.set(recordLine, line)
    else {
      if (wanted.has(ordinal)) kept.set(ordinal, { line, text: text() })
      ordinal++
    }
    return kept.size < wanted.size || rejectedAt.size < rejected.size
  })
  return { kept, rejectedAt }
}
