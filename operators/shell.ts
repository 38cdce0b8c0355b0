import path from 'node:path'
import paramsSchema from '../schemas/operators/shell.params.schema.json' with { type: 'json' }
import type { ProcessExit } from '../engine/process/run-process.ts'
import { checkWorkdir } from '../engine/process/workdir.ts'
import { hasTemplate } from '../engine/template/liquid.ts'
import type { Json } from '../engine/dag/yaml-load.ts'
import { abortedResult, defineOperator } from './define.ts'
import type { OperatorContext, OperatorResult, ParamProblem } from './define.ts'
import { shellCodeArgument } from './shell-command.ts'

export type ShellParams = {
  command?: string[]
  script?: string
  workdir?: string
}

/** The file, inside the attempt's workdir, that $CAIRN_OUTPUTS names. */
const OUTPUTS_FILE = 'cairn-outputs.json'
/** Outputs end up in the database and in downstream templates; a bigger file is an error. */
const MAX_OUTPUTS_BYTES = 1024 * 1024

/**
 * `command` runs exactly as rendered, without a shell. `script` runs as `/bin/sh -e -c SCRIPT` with
 * its text as written: the worker does not render it; each `{{ ... }}` in it is rendered into an
 * environment variable that the script refers to instead (engine/template/script-env.ts), so a value
 * can never become shell syntax. For the same reason a template in the
 * code argument of a `command` such as `[sh, -c, CODE]` is refused (TEMPLATE_IN_SHELL_COMMAND).
 *
 * `workdir` is a folder inside the attempt's own folder (a relative path that does not leave it
 * through ..), checked as written and again after rendering; the task user creates it.
 *
 * Failures: non-zero exit or a signal cairn did not send → `exit_code`, retryable. A $CAIRN_OUTPUTS
 * file that is not a JSON object (or exceeds 1 MiB) → `exit_code` too, because the fault is the
 * program's own, but not retryable: the same program would write the same file again. A program
 * that cannot start (not found, not executable) → `infrastructure`, not retryable (other start
 * errors such as EAGAIN are retryable); an argument with a NUL byte → `invalid_params`.
 */
export const shell = defineOperator({
  type: 'shell',
  summary: 'runs a command (argv, no shell) or a script with templated values passed as environment variables',
  paramsSchema,
  literalParams: ['script'],
  checkParams: checkShellParams,
  async run(params: ShellParams, ctx: OperatorContext): Promise<OperatorResult> {
    const argv = commandOf(params)
    if (typeof argv === 'string') return { ok: false, kind: 'invalid_params', retryable: false, message: argv }
    if (ctx.signal.aborted) return abortedResult(ctx.signal)

    const workdir = params.workdir === undefined ? { ok: true as const, relative: '.' } : checkWorkdir(params.workdir)
    if (!workdir.ok) return { ok: false, kind: 'invalid_params', retryable: false, message: workdir.message }
    // Loaded when a task runs: validating DAG files needs none of the process and file-system code.
    const [{ createWorkdir }, { runProcess }] = await Promise.all([import('../engine/process/attempt-dir.ts'), import('../engine/process/run-process.ts')])
    const made = await createWorkdir(ctx.workdir, workdir.relative, ctx.user, ctx.signal)
    if (!made.ok) return made.aborted ? abortedResult(ctx.signal) : { ok: false, kind: 'infrastructure', retryable: false, message: made.message }
    const cwd = made.value
    // The attempt's folder is new: no outputs file from an earlier try can be in it.
    const outputsPath = path.join(ctx.workdir, OUTPUTS_FILE)

    // A task user has no home of its own (and cannot read the worker's): the attempt's folder is it.
    const identity = ctx.user ? { HOME: ctx.workdir, USER: ctx.user.name, LOGNAME: ctx.user.name } : {}
    const env = childEnvironment({ ...ctx.workerEnv, ...identity }, ctx.env, {
      CAIRN_DAG_ID: ctx.dagId,
      CAIRN_RUN_ID: ctx.runId,
      CAIRN_TASK_ID: ctx.taskId,
      CAIRN_ATTEMPT: String(ctx.attempt),
      CAIRN_OUTPUTS: outputsPath,
    })
    ctx.log.info(params.script === undefined ? 'running command' : 'running script with /bin/sh -e', {
      ...(params.script === undefined ? { argv } : {}),
      cwd,
    })
    const exit = await runProcess({
      argv,
      env,
      cwd,
      ...(ctx.user ? { user: ctx.user } : {}),
      signal: ctx.signal,
      onLine: (stream, line) => {
        const wait = ctx.output(stream, line)
        return wait instanceof Promise ? wait : undefined
      },
      ...(ctx.killGraceMs === undefined ? {} : { killGraceMs: ctx.killGraceMs }),
    })
    const file = await readOutputs(outputsPath, ctx.signal)
    if (file === 'aborted') return abortedResult(ctx.signal, exit.exitCode === null ? undefined : { exit_code: exit.exitCode })
    return resultOf(exit, file, ctx)
  },
})

/** Static checks of shell params as written (see OperatorDefinition.checkParams). */
export function checkShellParams(params: Json): ParamProblem[] {
  const problems: ParamProblem[] = []
  if (params === null || typeof params !== 'object' || Array.isArray(params)) return problems
  const command = params.command
  if (Array.isArray(command)) {
    const found = shellCodeArgument(command)
    const code = found === undefined ? undefined : command[found.code]
    if (found !== undefined && typeof code === 'string' && hasTemplate(code)) {
      const index = found.code
      const reader = `${String(command[found.program])} ${String(command[found.program]).endsWith('env') ? '-S' : '-c'}`
      problems.push({
        code: 'TEMPLATE_IN_SHELL_COMMAND',
        message: `command[${index}] is code that ${reader} runs; a template here splices its value into the shell text, where a value such as $(id) runs. Pass the value through env (env: { NAME: "{{ ... }}" }) and write "$NAME" in the code, or use script:`,
        path: ['command', index],
      })
    }
  }
  const workdir = params.workdir
  if (typeof workdir === 'string') {
    // With a template, only the text before it is known: "/scratch/{{ run.id }}" is absolute whatever it renders to.
    const first = [workdir.indexOf('{{'), workdir.indexOf('{%')].filter((i) => i >= 0).reduce((a, b) => Math.min(a, b), Infinity)
    const known = first === Infinity ? workdir : workdir.slice(0, workdir.lastIndexOf('/', first) + 1)
    const checked = known === '' ? undefined : checkWorkdir(known)
    if (checked && !checked.ok) problems.push({ code: 'INVALID_WORKDIR', message: checked.message.replace(JSON.stringify(known), JSON.stringify(workdir)), path: ['workdir'] })
  }
  return problems
}

function commandOf(params: ShellParams): string[] | string {
  const hasCommand = params.command !== undefined
  const hasScript = params.script !== undefined
  if (hasCommand === hasScript) return 'shell params need exactly one of `command` or `script`'
  if (hasScript) {
    if (typeof params.script !== 'string' || params.script === '') return '`script` must be a non-empty string'
    return ['/bin/sh', '-e', '-c', params.script]
  }
  const command = params.command
  if (!Array.isArray(command) || command.length === 0 || !command.every((arg) => typeof arg === 'string')) {
    return '`command` must be a non-empty list of strings'
  }
  if (command[0] === '') return 'the program name (first element of `command`) rendered to an empty string'
  return command
}

/** Environment variables the worker holds for itself and no task may inherit. */
function isCairnSecretVariable(name: string): boolean {
  return name === 'DATABASE_URL' || name.startsWith('CAIRN_SECRET_')
}

/**
 * The child's environment: the worker's own minus cairn's secrets, then the task's `env` (which
 * may set anything, DATABASE_URL included, on purpose), then cairn's variables, which always win.
 */
export function childEnvironment(
  workerEnv: Readonly<Record<string, string | undefined>>,
  taskEnv: Readonly<Record<string, string>>,
  cairnEnv: Readonly<Record<string, string>>,
): Record<string, string> {
  const env: Record<string, string> = Object.create(null) as Record<string, string>
  for (const [key, value] of Object.entries(workerEnv)) {
    if (value !== undefined && !isCairnSecretVariable(key)) env[key] = value
  }
  for (const [key, value] of Object.entries(taskEnv)) env[key] = value
  for (const [key, value] of Object.entries(cairnEnv)) env[key] = value
  return env
}

type OutputsFile = { found: false } | { found: true; ok: true; outputs: Record<string, unknown> } | { found: true; ok: false; message: string }

async function readOutputs(file: string, signal: AbortSignal): Promise<OutputsFile | 'aborted'> {
  const { readTaskFile } = await import('../engine/process/attempt-dir.ts')
  const read = await readTaskFile(file, MAX_OUTPUTS_BYTES, signal, `$CAIRN_OUTPUTS (${file})`)
  if ('aborted' in read) return 'aborted'
  if (!read.found) return { found: false }
  if (!read.ok) return read
  const text = read.text
  if (text.trim() === '') return { found: false }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    return { found: true, ok: false, message: `$CAIRN_OUTPUTS does not hold valid JSON: ${errorMessage(error)}` }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value
    return { found: true, ok: false, message: `$CAIRN_OUTPUTS must hold a JSON object, got ${got}` }
  }
  return { found: true, ok: true, outputs: value as Record<string, unknown> }
}

function resultOf(exit: ProcessExit, file: OutputsFile, ctx: OperatorContext): OperatorResult {
  if (exit.startError) {
    const { code, message } = exit.startError
    // EINVAL: an empty program or a NUL byte, i.e. what the params rendered to.
    if (code === 'EINVAL') return { ok: false, kind: 'invalid_params', retryable: false, message: `cannot start the program: ${message}` }
    const retryable = !['ENOENT', 'EACCES', 'ENOTDIR'].includes(code)
    return { ok: false, kind: 'infrastructure', retryable, message: `cannot start the program: ${message}` }
  }
  const written = file.found && file.ok ? file.outputs : {}
  const outputs: Record<string, unknown> = { ...written, exit_code: exit.exitCode }
  if (exit.aborted) return abortedResult(ctx.signal, outputs)
  const fileProblem = file.found && !file.ok ? file.message : undefined
  if (exit.exitCode !== 0) {
    const how = exit.exitCode === null ? `was killed by ${exit.signal ?? 'a signal'}` : `exited with code ${exit.exitCode}`
    return {
      ok: false,
      kind: 'exit_code',
      retryable: true,
      message: `the program ${how}${fileProblem ? `; also ${fileProblem}` : ''}`,
      outputs: { ...outputs, ...(exit.signal ? { signal: exit.signal } : {}) },
    }
  }
  if (fileProblem) return { ok: false, kind: 'exit_code', retryable: false, message: fileProblem, outputs }
  return { ok: true, outputs }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
