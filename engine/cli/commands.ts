/** The registry of CLI commands. */
import type { CommandIo, ExitCode } from './io.ts'
import { EXIT } from './io.ts'
import { validateCommand } from './validate-command.ts'
import { schedulerCommand, upCommand, workerCommand } from './process-commands.ts'

export interface Command {
  summary: string
  usage: string
  run(args: string[], io: CommandIo): Promise<ExitCode>
}

/** Commands of SPEC section 5 that the engine does not provide yet say so plainly instead of pretending. */
function notYet(name: string, exitCode: ExitCode = EXIT.usage): Command['run'] {
  return async (_args, io) => {
    io.stderr(`cairn ${name}: the engine is not built yet in this version; only \`cairn validate\` works so far.`)
    return exitCode
  }
}

export const COMMANDS: Readonly<Record<string, Command>> = {
  validate: { summary: 'validate DAG files and folders (default: the DAG folder)', usage: 'cairn validate [PATH...] [--format json] [--config FILE]', run: validateCommand },
  up: { summary: 'run everything in one process: Postgres, scheduler, workers, web', usage: 'cairn up [--slots N] [--grace S] [--heartbeat S] [--lost-after S]', run: upCommand },
  scheduler: { summary: 'run the scheduler alone (many machines, one Postgres)', usage: 'cairn scheduler [--lost-after S]', run: schedulerCommand },
  worker: { summary: 'run a worker alone', usage: 'cairn worker [--slots N] [--grace S] [--heartbeat S]', run: workerCommand },
}

export function usage(): string {
  const width = Math.max(...Object.values(COMMANDS).map((c) => c.usage.length))
  const lines = Object.values(COMMANDS).map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`)
  return ['usage: cairn <command> [options]', '', ...lines, '', 'Exit codes: 0 ok, 1 the thing checked failed, 2 usage error or cannot connect.'].join('\n')
}
