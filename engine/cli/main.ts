/**
 * The `cairn` command. Reads the environment once, dispatches to one command, and maps every
 * outcome to an exit code of SPEC section 5: 0 ok, 1 the checked thing failed, 2 usage or connection.
 */
import { settingsFromEnv } from '../config/settings.ts'
import { EXIT, UsageError } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'
import { COMMANDS, usage } from './commands.ts'

export async function main(argv: string[], io: CommandIo): Promise<ExitCode> {
  const [name, ...args] = argv
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.stdout(usage())
    return name === undefined ? EXIT.usage : EXIT.ok
  }
  if (name === '--version') {
    io.stdout('cairn 0.1.0')
    return EXIT.ok
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined
  if (!command) {
    io.stderr(`cairn: unknown command "${name}"\n\n${usage()}`)
    return EXIT.usage
  }
  try {
    return await command.run(args, io)
  } catch (error) {
    if (error instanceof UsageError || (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
      io.stderr(`cairn ${name}: ${error.message}`)
      return EXIT.usage
    }
    throw error
  }
}

/** Runs the CLI for this process: real environment, stdout, stderr and exit code. */
export function runCli(argv: string[] = process.argv.slice(2)): Promise<void> {
  const io: CommandIo = {
    settings: settingsFromEnv(process.env, process.cwd()),
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
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
