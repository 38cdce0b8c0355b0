/**
 * Finds the argument of a `command` that a shell runs as code: the operand after `-c` of sh, bash,
 * dash, zsh, ksh and friends, also behind a path (/bin/sh), behind `env`, `nice`, `nohup`,
 * `setsid`, `timeout` or `busybox`, and in combined flags (`-ec`, `-xc`). A template there splices a
 * value into shell text (`echo {{ params.p }}` runs `$(id)`), exactly what shell's `script` refuses.
 *
 * The arguments after that operand are safe: the shell gives them to the script as $0, $1, ...
 * without reading them as code (`[sh, -c, 'echo "$1"', sh, "{{ params.p }}"]`).
 *
 * This is a guard against the obvious mistake, not a proof: other interpreters (`python -c`,
 * `node -e`, `perl -e`) run their argument as code too.
 */

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'ksh93', 'mksh', 'ash', 'yash', 'posh', 'fish'])
/** Shell options that take the next argument as their value. */
const SHELL_OPTIONS_WITH_VALUE = new Set(['-o', '+o', '-O', '+O', '--rcfile', '--init-file'])

export interface ShellCode {
  /** Index of the program that reads the code (the shell, or env for -S). */
  program: number
  /** Index of the argument it reads as code (or splits into a command line). */
  code: number
}

/** The argument of `argv` that a shell would run as code (or `env -S` split into a command), or undefined. */
export function shellCodeArgument(argv: readonly unknown[]): ShellCode | undefined {
  return findShell(argv, 0, 0)
}

function findShell(argv: readonly unknown[], start: number, depth: number): ShellCode | undefined {
  const program = argv[start]
  if (typeof program !== 'string' || depth > 8) return undefined
  const name = program.slice(program.lastIndexOf('/') + 1)
  if (SHELLS.has(name)) {
    const code = commandOperand(argv, start + 1)
    return code === undefined ? undefined : { program: start, code }
  }
  switch (name) {
    case 'env': {
      // env -S splits its value into a command line: a template there decides the program's words.
      for (let i = start + 1; i < argv.length; i++) {
        const arg = argv[i]
        if (typeof arg !== 'string' || arg === '--' || !(arg.startsWith('-') || /^[^=-][^=]*=/.test(arg))) break
        if (arg === '-S' || arg === '--split-string') return i + 1 < argv.length ? { program: start, code: i + 1 } : undefined
        if (/^-[^-]*S/.test(arg) || arg.startsWith('--split-string=')) return { program: start, code: i }
      }
      return afterWrapper(argv, start + 1, depth, new Set(['-u', '--unset', '-C', '--chdir']), (arg) => /^[^=-][^=]*=/.test(arg))
    }
    case 'nice':
      return afterWrapper(argv, start + 1, depth, new Set(['-n', '--adjustment']))
    case 'nohup':
    case 'setsid':
    case 'exec':
    case 'busybox':
      return afterWrapper(argv, start + 1, depth, new Set())
    case 'timeout': {
      // Options, then the duration, then the command.
      let i = start + 1
      while (typeof argv[i] === 'string' && (argv[i] as string).startsWith('-') && argv[i] !== '--') i += argv[i] === '-s' || argv[i] === '-k' ? 2 : 1
      if (argv[i] === '--') i++
      return findShell(argv, i + 1, depth + 1)
    }
    default:
      return undefined
  }
}

/** Skips a wrapper's options (and, for env, NAME=VALUE words) and looks at the command it runs. */
function afterWrapper(argv: readonly unknown[], start: number, depth: number, withValue: ReadonlySet<string>, isAssignment: (arg: string) => boolean = () => false): ShellCode | undefined {
  let i = start
  for (; i < argv.length; i++) {
    const arg = argv[i]
    if (typeof arg !== 'string') return undefined
    if (arg === '--') {
      i++
      break
    }
    if (withValue.has(arg)) {
      i++
      continue
    }
    if (arg.startsWith('-') || isAssignment(arg)) continue
    break
  }
  return findShell(argv, i, depth + 1)
}

/** After a shell's name: its options; when one of them is `c`, the first operand is the code. */
function commandOperand(argv: readonly unknown[], start: number): number | undefined {
  let sawC = false
  for (let i = start; i < argv.length; i++) {
    const arg = argv[i]
    if (typeof arg !== 'string') return undefined
    if (arg === '--' || arg === '-') return sawC && i + 1 < argv.length ? i + 1 : undefined
    if (SHELL_OPTIONS_WITH_VALUE.has(arg)) {
      i++
      continue
    }
    if (arg.startsWith('--')) continue
    if (/^[-+][A-Za-z]+$/.test(arg)) {
      if (arg.startsWith('-') && arg.includes('c')) sawC = true
      continue
    }
    return sawC ? i : undefined
  }
  return undefined
}
