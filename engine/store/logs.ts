/**
 * Task logs, stored in chunks of consecutive lines (migration 0008). A line's id is its number within
 * its attempt, from 1. The worker keeps an attempt's log under its cap by dropping old chunks, so ids
 * can jump; readers turn every jump into one line of its own (`dropped` set, id = the last missing
 * number) so that paging forwards (`after`) and backwards (`before`) both see it exactly once.
 */
import type { Queryable } from './queryable.ts'

export type LogStream = 'stdout' | 'stderr' | 'log'

export interface LogLine {
  id: number
  stream: LogStream
  line: string
  at: Date
  /** Set on the line standing for lines that were not kept; bytes is null when unknown. */
  dropped?: { lines: number; bytes: number | null }
}

export type AttemptKey = { runId: string; taskId: string; attempt: number }

/** One chunk as the worker writes it. */
export interface NewLogChunk {
  firstLine: number
  firstByte: number
  bytes: number
  streams: readonly LogStream[]
  ats: readonly Date[]
  lines: readonly string[]
}

/** Where the stored chunks of an attempt start and end (no line text): for a writer taking up an attempt again. */
export interface ChunkExtent {
  firstLine: number
  lineCount: number
  firstByte: number
  bytes: number
}

const STREAM_LETTER: Record<LogStream, string> = { stdout: 'o', stderr: 'e', log: 'l' }
const LETTER_STREAM: Record<string, LogStream> = { o: 'stdout', e: 'stderr', l: 'log' }

/** UTF-8 bytes a line takes in the log, its newline included. */
export function lineBytes(line: string): number {
  return Buffer.byteLength(line, 'utf8') + 1
}

/**
 * Stores one chunk and, in the same statement, deletes the chunks whose first line is in
 * `[drop.fromLine, drop.toLine)` (the oldest part of a log over its cap); then wakes followers.
 */
export async function appendLogChunk(q: Queryable, at: AttemptKey, chunk: NewLogChunk, drop?: { fromLine: number; toLine: number }): Promise<void> {
  await q.query(
    `WITH added AS (
       INSERT INTO cairn.task_log_chunk (run_id, task_id, attempt, first_line, first_byte, line_count, bytes, streams, ats, lines)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::timestamptz[], $10::text[])
     ), dropped AS (
       DELETE FROM cairn.task_log_chunk WHERE run_id = $1 AND task_id = $2 AND attempt = $3 AND first_line >= $11 AND first_line < $12
     )
     SELECT pg_notify('cairn_log', $1 || E'\\t' || $2 || E'\\t' || $3)`,
    [
      at.runId,
      at.taskId,
      at.attempt,
      chunk.firstLine,
      chunk.firstByte,
      chunk.lines.length,
      chunk.bytes,
      chunk.streams.map((s) => STREAM_LETTER[s]).join(''),
      chunk.ats,
      chunk.lines,
      drop?.fromLine ?? 0,
      drop?.toLine ?? 0,
    ],
  )
}

export async function logChunkExtents(q: Queryable, at: AttemptKey): Promise<ChunkExtent[]> {
  const { rows } = await q.query<{ first_line: string; line_count: number; first_byte: string; bytes: number }>(
    'SELECT first_line, line_count, first_byte, bytes FROM cairn.task_log_chunk WHERE run_id = $1 AND task_id = $2 AND attempt = $3 ORDER BY first_line',
    [at.runId, at.taskId, at.attempt],
  )
  return rows.map((r) => ({ firstLine: Number(r.first_line), lineCount: r.line_count, firstByte: Number(r.first_byte), bytes: r.bytes }))
}

interface Chunk {
  firstLine: number
  lastLine: number
  firstByte: number
  endByte: number
  streams: string
  ats: Date[]
  lines: string[]
}

const BATCH = 8
const COLUMNS = 'first_line, line_count, first_byte, bytes, streams, ats, lines'

async function chunks(q: Queryable, at: AttemptKey, where: string, order: 'ASC' | 'DESC', bound: number): Promise<Chunk[]> {
  const { rows } = await q.query<{ first_line: string; line_count: number; first_byte: string; bytes: number; streams: string; ats: Date[]; lines: string[] }>(
    `SELECT ${COLUMNS} FROM cairn.task_log_chunk WHERE run_id = $1 AND task_id = $2 AND attempt = $3 AND ${where} ORDER BY first_line ${order} LIMIT ${BATCH}`,
    [at.runId, at.taskId, at.attempt, bound],
  )
  return rows.map((r) => {
    const firstLine = Number(r.first_line)
    const firstByte = Number(r.first_byte)
    return { firstLine, lastLine: firstLine + r.line_count - 1, firstByte, endByte: firstByte + r.bytes, streams: r.streams, ats: r.ats, lines: r.lines }
  })
}

function lineOf(chunk: Chunk, index: number): LogLine {
  return { id: chunk.firstLine + index, stream: LETTER_STREAM[chunk.streams[index]!] ?? 'log', line: chunk.lines[index]!, at: chunk.ats[index]! }
}

/** Byte offset just after line `id` of `chunk` (which holds it). */
function endByteOf(chunk: Chunk, id: number): number {
  let end = chunk.firstByte
  for (let i = 0; i <= id - chunk.firstLine; i++) end += lineBytes(chunk.lines[i]!)
  return end
}

/** The line standing for lines `firstId`..`lastId`, which were not kept. */
export function droppedLine(firstId: number, lastId: number, bytes: number | null, at: Date): LogLine {
  const lines = lastId - firstId + 1
  const size = bytes === null ? '' : ` (${formatBytes(bytes)})`
  return {
    id: lastId,
    stream: 'log',
    line: `[cairn] … ${lines.toLocaleString('en-US')} line${lines === 1 ? '' : 's'}${size} left out here: an attempt's stored log keeps its beginning and its end within workers.max_log_bytes (lines are also lost when the database stays unreachable too long) …`,
    at,
    dropped: { lines, bytes },
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(1)} ${units[unit]}`
}

/** Lines with an id above `afterId` (0: from the first), oldest first, at most `limit`. */
export async function readLogs(q: Queryable, at: AttemptKey, afterId = 0, limit = 10_000): Promise<LogLine[]> {
  const out: LogLine[] = []
  let cursor = afterId
  // Byte offset after line `cursor`, when known (to say how much a gap dropped).
  let cursorByte: number | null = afterId === 0 ? 0 : null
  // The chunk holding line `cursor` (the last one starting at or before it) is read too, for its byte offset.
  let where = `first_line >= coalesce((SELECT max(first_line) FROM cairn.task_log_chunk WHERE run_id = $1 AND task_id = $2 AND attempt = $3 AND first_line <= $4), 1)`
  let bound = afterId
  for (;;) {
    const batch = await chunks(q, at, where, 'ASC', bound)
    for (const chunk of batch) {
      if (chunk.lastLine <= cursor) {
        if (chunk.lastLine === cursor) cursorByte = chunk.endByte
        continue
      }
      if (chunk.firstLine <= cursor) {
        cursorByte = endByteOf(chunk, cursor)
      } else if (chunk.firstLine > cursor + 1) {
        out.push(droppedLine(cursor + 1, chunk.firstLine - 1, cursorByte === null ? null : chunk.firstByte - cursorByte, chunk.ats[0]!))
        cursor = chunk.firstLine - 1
        if (out.length >= limit) return out
      }
      for (let i = cursor + 1 - chunk.firstLine; i < chunk.lines.length; i++) {
        out.push(lineOf(chunk, i))
        cursor = chunk.firstLine + i
        if (out.length >= limit) return out
      }
      cursorByte = chunk.endByte
    }
    if (batch.length < BATCH) return out
    where = 'first_line > $4'
    bound = batch.at(-1)!.firstLine
  }
}

/**
 * The last `limit` lines with an id below `beforeId` (undefined: the latest lines), oldest first, and
 * whether lines before them exist. A `beforeId` that is itself a gap's id (or inside a gap) is not
 * followed by a second line for the same gap.
 */
export async function readLogsBefore(q: Queryable, at: AttemptKey, beforeId: number | undefined, limit: number): Promise<{ lines: LogLine[]; earlier: boolean }> {
  const out: LogLine[] = [] // newest first, reversed at the end
  // `upper`: the lowest id already accounted for; lines below it come next.
  let upper = beforeId ?? Number.MAX_SAFE_INTEGER
  let upperByte: number | null = null
  let upperAt: Date | undefined
  // Whether `upper` is a stored line (a gap just below it must then be shown) or part of a gap that was shown.
  let upperStored = beforeId === undefined
  let where = 'first_line <= $4'
  let bound = upper
  let first = true
  for (;;) {
    const batch = await chunks(q, at, where, 'DESC', bound)
    for (const chunk of batch) {
      if (first) {
        first = false
        if (beforeId !== undefined && chunk.lastLine >= beforeId) {
          upperStored = true
          upperByte = chunk.firstByte
          upperAt = chunk.ats[0]
          if (beforeId > chunk.firstLine) {
            upperByte = endByteOf(chunk, beforeId - 1)
            upperAt = chunk.ats[beforeId - chunk.firstLine]
          }
        }
        if (beforeId === undefined) upper = chunk.lastLine + 1
      }
      const top = Math.min(chunk.lastLine, upper - 1)
      if (top < chunk.firstLine) continue
      if (top < upper - 1 && upperStored) {
        if (out.length >= limit) return { lines: out.reverse(), earlier: true }
        out.push(droppedLine(top + 1, upper - 1, upperByte === null ? null : upperByte - chunk.endByte, upperAt ?? chunk.ats.at(-1)!))
      }
      for (let id = top; id >= chunk.firstLine; id--) {
        if (out.length >= limit) return { lines: out.reverse(), earlier: true }
        out.push(lineOf(chunk, id - chunk.firstLine))
      }
      upper = chunk.firstLine
      upperByte = chunk.firstByte
      upperAt = chunk.ats[0]
      upperStored = true
    }
    if (batch.length < BATCH) break
    where = 'first_line < $4'
    bound = batch.at(-1)!.firstLine
  }
  // Lines before the first stored chunk (never the case while the head is kept, but a reader must not hide it).
  if (upperStored && upper > 1 && upper !== Number.MAX_SAFE_INTEGER) {
    if (out.length >= limit) return { lines: out.reverse(), earlier: true }
    out.push(droppedLine(1, upper - 1, upperByte, upperAt ?? new Date(0)))
  }
  return { lines: out.reverse(), earlier: false }
}
