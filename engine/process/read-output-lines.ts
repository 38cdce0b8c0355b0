/**
 * Reads a child process's stdout and stderr into lines for a sink, with the sink's back-pressure:
 * when the sink returns a promise, both pipes pause until it settles, so a program that writes
 * faster than its log can be stored blocks once its pipe is full instead of filling the worker's
 * memory.
 */
import type { ChildProcess } from 'node:child_process'
import { createLineSplitter } from './split-lines.ts'

export type OutputStream = 'stdout' | 'stderr'

export interface OutputLines {
  /** Pipes not yet closed: the program's output may not be complete until this is 0. */
  readonly open: number
}

/**
 * Sends every line of the child's output to `onLine` (see RunProcessOptions.onLine: errors it
 * throws are swallowed), and calls `onClose` each time one of the pipes has closed and its last
 * line was sent.
 */
export function readOutputLines(child: ChildProcess, onLine: (stream: OutputStream, line: string) => void | Promise<unknown>, onClose: () => void): OutputLines {
  let openStreams = 2
  // The sink's latest "wait" (see onLine); both pipes pause until it settles.
  let wait: Promise<unknown> | undefined
  let pauses = 0
  const emit = (stream: OutputStream) => (line: string) => {
    try {
      const result = onLine(stream, line)
      if (result instanceof Promise) wait = result
    } catch {
      // A failing log sink must not leave a process group behind; the line is lost.
    }
  }
  const holdOutput = (): void => {
    if (!wait) return
    const until = wait
    wait = undefined
    const pause = ++pauses
    child.stdout?.pause()
    child.stderr?.pause()
    const resume = (): void => {
      if (pause !== pauses) return // a later wait took over
      child.stdout?.resume()
      child.stderr?.resume()
    }
    until.then(resume, resume)
  }
  for (const [name, readable] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
    const splitter = createLineSplitter(emit(name))
    if (!readable) {
      openStreams--
      continue
    }
    readable.on('data', (chunk: Buffer) => {
      splitter.push(chunk)
      holdOutput()
    })
    readable.on('error', () => {})
    readable.on('close', () => {
      splitter.end()
      openStreams--
      onClose()
    })
  }
  return {
    get open() {
      return openStreams
    },
  }
}
