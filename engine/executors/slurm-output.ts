/**
 * Tails a Slurm job's output file while it runs and turns srun's `--label` lines ("3: text") into RankLines.
 * Lines without a label come from the batch script itself (or srun's own messages) and get rank -1.
 * A requeued job writes on after its first run (the script asks for `--open-mode=append`); a file shorter than
 * what was read (truncated by hand, or by a cluster that forces truncation) is read again from its start.
 */
import { StringDecoder } from 'node:string_decoder'
import type { RankLine } from './executor.ts'
import { LocalSlurmRunner, type SlurmFileAccess } from './slurm-runner.ts'

const LOCAL_FILES = new LocalSlurmRunner({}).files

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
  private readonly files: SlurmFileAccess

  /**
   * `beforeNewData` runs when output has grown, before its lines go out (the job's node list is known by then).
   * `files`: how the file is read (this machine's file system, or SFTP on a login node).
   */
  constructor(path: string, stream: RankLine['stream'], emit: (line: RankLine) => unknown, hostOf: (rank: number) => string | undefined, beforeNewData?: () => Promise<void>, files: SlurmFileAccess = LOCAL_FILES) {
    this.files = files
    this.path = path
    this.stream = stream
    this.emit = emit
    this.hostOf = hostOf
    this.beforeNewData = beforeNewData
  }

  /** Reads what was appended since the last call; `final` also emits a last line without a newline. */
  async read(final = false): Promise<void> {
    const size = await this.files.size(this.path).catch(() => undefined)
    if (size !== undefined && size < this.offset) {
      this.offset = 0
      this.partial = ''
      this.decoder = new StringDecoder('utf8')
    }
    if (size !== undefined && size > this.offset) {
      await this.beforeNewData?.()
      // In bounded chunks, so that a job that wrote gigabytes is not read into one buffer.
      while (this.offset < size) {
        const chunk = await this.files.readAt(this.path, this.offset, Math.min(CHUNK, size - this.offset))
        if (chunk.length === 0) break
        this.offset += chunk.length
        this.partial += this.decoder.write(chunk)
        await this.emitLines(false)
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
