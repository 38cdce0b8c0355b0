/**
 * Tails a Slurm job's output file while it runs and turns srun's `--label` lines ("3: text") into RankLines.
 * Lines without a label come from the batch script itself (or srun's own messages) and get rank -1.
 * A requeued job starts its file again: a file shorter than what was read is read from its start.
 */
import { open, stat } from 'node:fs/promises'
import { StringDecoder } from 'node:string_decoder'
import type { RankLine } from './executor.ts'

const CHUNK = 1 << 20
const MAX_LINE = 64 * 1024

export class OutputTail {
  private offset = 0
  private partial = ''
  private decoder = new StringDecoder('utf8')
  private readonly path: string
  private readonly stream: RankLine['stream']
  private readonly emit: (line: RankLine) => unknown
  private readonly hostOf: (rank: number) => string | undefined
  private readonly beforeNewData: (() => Promise<void>) | undefined

  /** `beforeNewData` runs when output has grown, before its lines go out (the job's node list is known by then). */
  constructor(path: string, stream: RankLine['stream'], emit: (line: RankLine) => unknown, hostOf: (rank: number) => string | undefined, beforeNewData?: () => Promise<void>) {
    this.path = path
    this.stream = stream
    this.emit = emit
    this.hostOf = hostOf
    this.beforeNewData = beforeNewData
  }

  /** Reads what was appended since the last call; `final` also emits a last line without a newline. */
  async read(final = false): Promise<void> {
    const size = await stat(this.path).then((s) => s.size, () => undefined)
    if (size !== undefined && size < this.offset) {
      this.offset = 0
      this.partial = ''
      this.decoder = new StringDecoder('utf8')
    }
    if (size !== undefined && size > this.offset) {
      await this.beforeNewData?.()
      const handle = await open(this.path, 'r')
      try {
        // In bounded chunks, so that a job that wrote gigabytes is not read into one buffer.
        const buffer = Buffer.alloc(Math.min(CHUNK, size - this.offset))
        while (this.offset < size) {
          const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - this.offset), this.offset)
          if (bytesRead === 0) break
          this.offset += bytesRead
          this.partial += this.decoder.write(buffer.subarray(0, bytesRead))
          await this.emitLines(false)
        }
      } finally {
        await handle.close()
      }
    }
    await this.emitLines(final)
  }

  private async emitLines(final: boolean): Promise<void> {
    const lines = this.partial.split('\n')
    this.partial = lines.pop() ?? ''
    // A line that never ends is passed on in pieces rather than held without bound.
    if ((final && this.partial !== '') || this.partial.length > MAX_LINE) {
      lines.push(this.partial)
      this.partial = ''
    }
    for (const line of lines) await this.emit(this.toRankLine(line))
  }

  private toRankLine(text: string): RankLine {
    const match = /^\s*(\d+): ?(.*)$/s.exec(text)
    if (match === null) return { rank: -1, stream: this.stream, line: text }
    const rank = Number(match[1])
    const host = this.hostOf(rank)
    return { rank, ...(host !== undefined ? { host } : {}), stream: this.stream, line: match[2] as string }
  }
}
