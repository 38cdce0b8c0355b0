import { lstat, mkdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import paramsSchema from '../schemas/operators/shell.params.schema.json' with { type: 'json' }
import { runProcess } from '../engine/process/run-process.ts'
import type { ProcessExit } from '../engine/process/run-process.ts'
import { abortedResult, defineOperator } from './define.ts'
import type { OperatorContext, OperatorResult } from './define.ts'

export type ShellParams = {
  command?: string[]
  script?: string
  workdir?: string
}

/** The file, inside the attempt's workdir, that $CAIRN_OUTPUTS names. */
export const OUTPUTS_FILE = 'cairn-outputs.json'
/** Outputs end up in the database and in downstream templates; a bigger file is an error. */
export const MAX_OUTPUTS_BYTES = 1024 * 1024

/**
 * `command` runs exactly as rendered, without a shell. `script` runs as `/bin/sh -e -c SCRIPT` with
 * its text exactly as written: the worker does not render it (templated values reach a script only
 * through `env`), so a value can never become shell syntax.
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
  async run(params: ShellParams, ctx: OperatorContext): Promise<OperatorResult> {
    const argv = commandOf(params)
    if (typeof argv === 'string') return { ok: false, kind: 'invalid_params', retryable: false, message: argv }
    if (ctx.signal.aborted) return abortedResult(ctx.signal)

    const cwd = params.workdir === undefined ? ctx.workdir : path.resolve(ctx.workdir, params.workdir)
    try {
      await mkdir(cwd, { recursive: true })
    } catch (error) {
      return { ok: false, kind: 'infrastructure', retryable: false, message: `cannot create workdir ${cwd}: ${errorMessage(error)}` }
    }
    const outputsPath = path.join(ctx.workdir, OUTPUTS_FILE)
    await rm(outputsPath, { force: true })

    const env = childEnvironment(ctx.workerEnv, ctx.env, {
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
      signal: ctx.signal,
      onLine: (stream, line) => ctx.output(stream, line),
      ...(ctx.killGraceMs === undefined ? {} : { killGraceMs: ctx.killGraceMs }),
    })
    return resultOf(exit, await readOutputs(outputsPath), ctx)
  },
})

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
export function isCairnSecretVariable(name: string): boolean {
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

async function readOutputs(file: string): Promise<OutputsFile> {
  let text: string
  try {
    const info = await lstat(file)
    if (!info.isFile()) return { found: true, ok: false, message: `$CAIRN_OUTPUTS (${file}) is not a regular file` }
    if (info.size > MAX_OUTPUTS_BYTES) {
      return { found: true, ok: false, message: `$CAIRN_OUTPUTS is ${info.size} bytes; outputs are limited to ${MAX_OUTPUTS_BYTES} bytes` }
    }
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { found: false }
    return { found: true, ok: false, message: `cannot read $CAIRN_OUTPUTS: ${errorMessage(error)}` }
  }
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
