/**
 * Splits a program's output, a byte stream, into lines: pure logic, no I/O. Memory stays bounded
 * whatever the program writes, and every line is text PostgreSQL can store.
 */

/** Longest line passed to onLine; the rest of a longer line is dropped and counted. */
export const MAX_LINE_BYTES = 64 * 1024

export interface LineSplitter {
  push(chunk: Buffer): void
  /** Emits a last line without newline, if any. Safe to call more than once. */
  end(): void
}

/**
 * Splits a byte stream into lines. Memory is bounded by `maxLineBytes` per stream whatever the
 * program writes: a longer line keeps its head and ends with a note of how much was dropped. Bytes
 * are decoded as UTF-8 (invalid sequences become U+FFFD), a CR before the newline is removed, and
 * NUL becomes U+FFFD because PostgreSQL text cannot hold it.
 */
export function createLineSplitter(emit: (line: string) => void, maxLineBytes = MAX_LINE_BYTES): LineSplitter {
  let parts: Buffer[] = []
  let size = 0
  let dropped = 0

  const append = (piece: Buffer): void => {
    if (piece.length === 0) return
    const room = maxLineBytes - size
    if (piece.length <= room) {
      parts.push(piece)
      size += piece.length
    } else {
      if (room > 0) {
        parts.push(piece.subarray(0, room))
        size += room
      }
      dropped += piece.length - Math.max(room, 0)
    }
  }
  const flush = (): void => {
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)
    let text: string
    if (dropped > 0) {
      // Cut before a character that the limit split in two, and count its bytes as dropped.
      const cut = completeUtf8Length(bytes)
      text = `${bytes.toString('utf8', 0, cut)}… [line truncated: ${dropped + bytes.length - cut} more bytes]`
    } else {
      text = bytes.toString('utf8')
      if (text.endsWith('\r')) text = text.slice(0, -1)
    }
    parts = []
    size = 0
    dropped = 0
    emit(text.includes('\0') ? text.replaceAll('\0', '\uFFFD') : text)
  }

  return {
    push(chunk) {
      let start = 0
      while (start < chunk.length) {
        const newline = chunk.indexOf(0x0a, start)
        if (newline === -1) {
          // Copy the unfinished tail so a small partial line does not pin the whole chunk.
          append(Buffer.from(chunk.subarray(start)))
          return
        }
        append(chunk.subarray(start, newline))
        flush()
        start = newline + 1
      }
    },
    end() {
      if (size > 0 || dropped > 0) flush()
    },
  }
}

/** Length of the longest prefix of `bytes` that does not end inside a multi-byte UTF-8 sequence. */
function completeUtf8Length(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(4, bytes.length); back++) {
    const byte = bytes[bytes.length - back]!
    if ((byte & 0xc0) === 0x80) continue
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1
    return length > back ? bytes.length - back : bytes.length
  }
  return bytes.length
}
