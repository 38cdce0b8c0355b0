/**
 * Stores the log lines of one attempt: in chunks (one row for many lines), under a cap, and with
 * bounded memory whatever the task prints.
 *
 * - Chunks: lines gather until `chunkBytes` (or `flushMs` passed, so followers see them promptly),
 *   then go to the database as one row.
 * - Cap (`maxBytes`, workers.max_log_bytes): the first half of the cap is kept as written (the
 *   command, its settings, the first errors), then a rolling window of the latest half: once the
 *   window is over its half, its oldest chunks are deleted in the statement that adds the new one.
 *   So a finished attempt keeps its beginning and its end, and a reader sees one "lines left out"
 *   line between them. The stored size stays under the cap plus one chunk.
 * - Memory: one chunk is written at a time; while one more is full and waiting, `write` returns a
 *   promise, and the caller (runProcess) stops reading the program's output until it resolves, so
 *   a program that prints faster than the database stores blocks on its own stdout instead of
 *   growing the worker.
 * - Database outages: every write goes through the worker's outage buffer, which keeps retrying a
 *   write that failed with a connection error, up to its byte bound (beyond it, writes are dropped).
 *   While writes wait there, the writer stops asking the program to wait and sends chunk after chunk
 *   into the buffer, so a task keeps running through an outage; lines the buffer could not keep
 *   leave a hole in the numbering that readers show as lines left out.
 * - The same attempt can run again (handed back by a draining worker): the writer first reads where
 *   the stored lines end and carries on numbering from there.
 */
import type { Logger } from 'pino'
import type { Queryable } from '../store/queryable.ts'
import { appendLogChunk, lineBytes, logChunkExtents } from '../store/logs.ts'
import type { AttemptKey, LogStream } from '../store/logs.ts'
import { createOutageBuffer } from './outage-buffer.ts'
import type { OutageBuffer } from './outage-buffer.ts'

export const DEFAULT_MAX_LOG_BYTES = 50 * 1024 * 1024
const MAX_CHUNK_BYTES = 64 * 1024
const MAX_CHUNK_LINES = 4000
const DEFAULT_FLUSH_MS = 200

export interface LogWriterOptions {
  /** Cap of the attempt's stored log in bytes (UTF-8, one newline per line). @default 52428800 */
  maxBytes?: number
  /** Seal the current chunk after this long even when it is not full. @default 200 */
  flushMs?: number
  /** Where writes wait out a database outage (the worker's, shared by its attempts). @default one of its own */
  writes?: OutageBuffer
  log: Logger
}

export interface LogWriter {
  /**
   * Adds one line. Returns a promise when the writer holds as much as it may: the caller should
   * wait for it before producing more (lines written meanwhile are still kept).
   */
  write(stream: LogStream, line: string): Promise<void> | undefined
  /** Stores what is left; resolves when every line has been written (or given up on). */
  close(): Promise<void>
}

interface Sealed {
  streams: LogStream[]
  ats: number[]
  lines: string[]
  bytes: number
}

interface TailChunk {
  firstLine: number
  bytes: number
}

export function openLogWriter(db: Queryable, at: AttemptKey, options: LogWriterOptions): LogWriter {
  const maxBytes = Math.max(1, options.maxBytes ?? DEFAULT_MAX_LOG_BYTES)
  const headCap = Math.floor(maxBytes / 2)
  const tailCap = maxBytes - headCap
  // Small caps get small chunks, so the window keeps several of them.
  const chunkBytes = Math.max(1024, Math.min(MAX_CHUNK_BYTES, Math.floor(maxBytes / 16)))
  const flushMs = options.flushMs ?? DEFAULT_FLUSH_MS

  const writes = options.writes ?? createOutageBuffer({ log: options.log })
  let current: Sealed = empty()
  const queue: Sealed[] = []
  let inFlight = 0
  let idle: Promise<void> = Promise.resolve()
  let markIdle: (() => void) | undefined
  let waiters: (() => void)[] = []
  let closed = false

  // Where the stored log stands; read from the database before the first chunk is numbered.
  let position: { nextLine: number; nextByte: number; headBytes: number; headOpen: boolean; tail: TailChunk[]; tailBytes: number } | undefined
  let positionRead: Promise<boolean> | undefined

  const loadPosition = async (): Promise<NonNullable<typeof position>> => {
    const extents = await logChunkExtents(db, at)
    const state = { nextLine: 1, nextByte: 0, headBytes: 0, headOpen: true, tail: [] as TailChunk[], tailBytes: 0 }
    for (const e of extents) {
      // Head chunks end within the head's half; every chunk after the first one that did not is the window.
      if (state.headOpen && e.firstByte + e.bytes <= headCap && e.firstLine === state.nextLine) state.headBytes += e.bytes
      else {
        state.headOpen = false
        state.tail.push({ firstLine: e.firstLine, bytes: e.bytes })
        state.tailBytes += e.bytes
      }
      state.nextLine = e.firstLine + e.lineCount
      state.nextByte = e.firstByte + e.bytes
    }
    return state
  }

  /** Numbers the chunk (in send order) and decides which old chunks the cap drops with it. */
  const place = (chunk: Sealed) => {
    const p = position!
    const firstLine = p.nextLine
    const firstByte = p.nextByte
    p.nextLine += chunk.lines.length
    p.nextByte += chunk.bytes
    let drop: { fromLine: number; toLine: number } | undefined
    if (p.headOpen && p.headBytes + chunk.bytes <= headCap) {
      p.headBytes += chunk.bytes
    } else {
      p.headOpen = false
      p.tail.push({ firstLine, bytes: chunk.bytes })
      p.tailBytes += chunk.bytes
      let dropped = 0
      while (p.tailBytes > tailCap && p.tail.length - dropped > 1) p.tailBytes -= p.tail[dropped++]!.bytes
      if (dropped > 0) {
        drop = { fromLine: p.tail[0]!.firstLine, toLine: p.tail[dropped]!.firstLine }
        p.tail.splice(0, dropped)
      }
    }
    return { firstLine, firstByte, drop }
  }

  const send = async (chunk: Sealed): Promise<void> => {
    if (!position) {
      positionRead ??= writes.write(0, async () => {
        position ??= await loadPosition()
      })
      if (!(await positionRead)) {
        positionRead = undefined
        options.log.warn({ run: at.runId, task: at.taskId, attempt: at.attempt, lines: chunk.lines.length }, 'could not read where the task log stands; lines dropped')
        return
      }
    }
    const { firstLine, firstByte, drop } = place(chunk)
    const row = { firstLine, firstByte, bytes: chunk.bytes, streams: chunk.streams, ats: chunk.ats.map((ms) => new Date(ms)), lines: chunk.lines }
    // Numbers already given to lines that are not stored stay used: readers show the hole as lines left out.
    const stored = await writes.write(chunk.bytes + 64 * chunk.lines.length, () => appendLogChunk(db, at, row, drop))
    if (!stored) options.log.warn({ run: at.runId, task: at.taskId, attempt: at.attempt, lines: chunk.lines.length }, 'task log lines dropped while the database was unreachable')
  }

  /** Writes waiting out an outage: the program is then not asked to wait for them. */
  const outage = (): boolean => writes.waitingBytes > 0

  const release = (): void => {
    const ready = waiters
    waiters = []
    for (const resolve of ready) resolve()
  }

  const pump = (): void => {
    // One chunk at a time normally (order, and back-pressure); during an outage, as many as come.
    while (queue.length > 0 && (inFlight === 0 || outage())) {
      const next = queue.shift()!
      if (inFlight++ === 0) idle = new Promise((resolve) => (markIdle = resolve))
      send(next)
        .catch((error: unknown) => {
          options.log.warn({ err: error, run: at.runId, task: at.taskId, attempt: at.attempt, lines: next.lines.length }, 'could not store task log lines')
        })
        .finally(() => {
          if (--inFlight === 0) markIdle?.()
          pump()
          // Room again once the waiting chunk is on its way: the caller fills the next one meanwhile.
          if (queue.length === 0) release()
        })
    }
  }

  const seal = (): void => {
    if (current.lines.length > 0) {
      queue.push(current)
      current = empty()
    }
    pump()
    if (outage()) release()
  }

  const timer = setInterval(seal, flushMs)
  timer.unref()

  return {
    write(stream, line) {
      const text = line.includes('\0') ? line.replaceAll('\0', '\uFFFD') : line
      current.streams.push(stream)
      current.ats.push(Date.now())
      current.lines.push(text)
      current.bytes += lineBytes(text)
      if (current.bytes >= chunkBytes || current.lines.length >= MAX_CHUNK_LINES) seal()
      if (closed || queue.length === 0 || outage()) return undefined
      return new Promise<void>((resolve) => waiters.push(resolve))
    },
    async close() {
      closed = true
      clearInterval(timer)
      seal()
      while (inFlight > 0 || queue.length > 0) {
        await idle
        pump()
      }
      release()
    },
  }
}

function empty(): Sealed {
  return { streams: [], ats: [], lines: [], bytes: 0 }
}
