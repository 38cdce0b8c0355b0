/** What a command needs from the outside world, injected so commands can be tested without a process. */
import type { Writable } from 'node:stream'
import type { Settings } from '../config/settings.ts'

export interface CommandIo {
  settings: Settings
  stdout: (line: string) => void
  stderr: (line: string) => void
  /** Whether stderr is a terminal (pretty logs by default). @default false */
  stderrIsTTY?: boolean
  /** Whether stdout is a terminal (task output printed there is escaped). @default false */
  stdoutIsTTY?: boolean
  /** stdout as a stream, for output too large to build in memory (`cairn datasets export`). @default lines through `stdout` */
  stdoutStream?: Writable
}

/** SPEC section 5 exit codes. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const
export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

export class UsageError extends Error {}
