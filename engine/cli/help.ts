/** `cairn COMMAND --help`: the usage line plus what the command does and what its exit codes mean. */
import { EXIT } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'

type Run = (args: string[], io: CommandIo) => Promise<ExitCode>

export function withHelp(usage: string, help: string, run: Run): Run {
  return async (args, io) => {
    if (args.includes('--help') || args.includes('-h')) {
      io.stdout(`usage: ${usage}\n\n${help}`)
      return EXIT.ok
    }
    return run(args, io)
  }
}
