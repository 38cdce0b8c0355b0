/**
 * The `cairn` command. Reads the environment once, dispatches to one command, and maps every
 * outcome to an exit code of SPEC section 5: 0 ok, 1 the checked thing failed, 2 usage or connection.
 */
import { settingsFromEnv } from '../config/settings.ts'
import { EXIT, UsageError } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'
import { COMMANDS } from './commands.ts'
import { asksForHelp, commandHelp, isCommandName, overview, unknownCommand } from './help.ts'

export async function main(argv: string[], io: CommandIo): Promise<ExitCode> {
  const [name, ...args] = argv
  if (name === undefined) {
    io.stderr(overview())
    return EXIT.usage
  }
  if (name === '--help' || name === '-h' || (name === 'help' && args.length === 0)) {
    io.stdout(overview())
    return EXIT.ok
  }
  if (name === '--version') {
    io.stdout('cairn 0.1.0')
    return EXIT.ok
  }
  if (name === 'help') return printHelp(args[0]!, io)
  if (!isCommandName(name)) {
    io.stderr(unknownCommand(name))
    return EXIT.usage
  }
  if (asksForHelp(args)) return printHelp(name, io)
  try {
    const command = await COMMANDS[name].load(true)
    return await command.run(args, io)
  } catch (error) {
    if (error instanceof UsageError || (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
      io.stderr(`cairn ${name}: ${error.message}`)
      return EXIT.usage
    }
    throw error
  }
}

/** `cairn help COMMAND` and `cairn COMMAND --help` print the same text. */
async function printHelp(name: string, io: CommandIo): Promise<ExitCode> {
  if (!isCommandName(name)) {
    io.stderr(unknownCommand(name))
    return EXIT.usage
  }
  const { help } = await COMMANDS[name].load()
  io.stdout(commandHelp(name, help))
  return EXIT.ok
}

const LONG_RUNNING = new Set(['up', 'scheduler', 'worker', 'web', 'serve'])

/** Runs the CLI for this process: real environment, stdout, stderr and exit code. */
export function runCli(argv: string[] = process.argv.slice(2)): Promise<void> {
  // A reader that went away (`cairn logs RUN T --follow | head -1`) ends a one-shot command quietly, as
  // SIGPIPE ends other tools. The long-running processes keep the crash: it says where they stopped.
  if (!LONG_RUNNING.has(argv[0] ?? '')) {
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error
      process.exit(process.exitCode ?? EXIT.ok)
    })
  }
  const io: CommandIo = {
    settings: settingsFromEnv(process.env, process.cwd()),
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
    stderrIsTTY: process.stderr.isTTY === true,
    stdoutIsTTY: process.stdout.isTTY === true,
    stdoutStream: process.stdout,
  }
  return main(argv, io).then(
    (code) => {
      process.exitCode = code
    },
    (error: unknown) => {
      process.stderr.write(`cairn: ${error instanceof Error ? error.message : String(error)}\n`)
      process.exitCode = EXIT.failed
    },
  )
}

if (import.meta.main) void runCli()
