/**
 * Tails a Slurm job's output file while it runs and turns srun's `--label` lines ("3: text") into RankLines.
 * Lines without a label come from the batch script itself (or srun's own messages) and get rank -1.
 * A requeued job starts its file again: a file shorter than what was read is read from its start.
 */
import { open, stat } from 'node:fs/promises'
import type { RankLine } from './executor.ts'

export class OutputTail {
  private offset = 0
  private partial = ''
  private readonly path: string
  private readonly stream: RankLine['stream']
  private readonly emit: (line: RankLine) => unknown
  private readonly hostOf: (rank: number) => string | undefined

  constructor(path: string, stream: RankLine['stream'], emit: (line: RankLine) => unknown, hostOf: (rank: number) => string | undefined) {
    this.path = path
    this.stream = stream
    this.emit = emit
    this.hostOf = hostOf
  }

  /** Reads what was appended since the last call; `final` also emits a last line without a newline. */
  async read(final = false): Promise<void> {
    const size = await stat(this.path).then((s) => s.size, () => undefined)
    if (size !== undefined && size < this.offset) {
      this.offset = 0
      this.partial = ''
    }
    if (size !== undefined && size > this.offset) {
      const handle = await open(this.path, 'r')
      try {
        const buffer = Buffer.alloc(size - this.offset)
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.offset)
        this.offset += bytesRead
        this.partial += buffer.subarray(0, bytesRead).toString('utf8')
      } finally {
        await handle.close()
      }
    }
    const lines = this.partial.split('\n')
    this.partial = lines.pop() ?? ''
    if (final && this.partial !== '') {
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
