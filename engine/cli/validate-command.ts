/** `cairn validate [PATH...] [--format json]` */
import { parseArgs } from 'node:util'
import { validatePaths } from '../dag/validate-folder.ts'
import { formatDiagnostic } from '../dag/diagnostics.ts'
import type { Diagnostic } from '../dag/diagnostics.ts'
import { deploymentNames, loadConfig } from '../config/load-config.ts'
import { EXIT, UsageError } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'
import { formatOption } from './format.ts'

export async function validateCommand(args: string[], io: CommandIo): Promise<ExitCode> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { format: { type: 'string', default: 'text' }, config: { type: 'string' } } })
  const format = formatOption(values.format)
  const { settings } = io
  const config = loadConfig(values.config ?? settings.configPath, settings.cwd)
  if (values.config !== undefined && config.file === undefined) throw new UsageError(`config file not found: ${values.config}`)
  const paths = positionals.length > 0 ? positionals : [settings.dagsFolder]
  const started = performance.now()
  const result = await validatePaths(paths, { cwd: settings.cwd, ...(config.ok ? { names: deploymentNames(config.config) } : {}) })
  const diagnostics: Diagnostic[] = [...config.diagnostics.map((d) => ({ ...d, file: relativeToCwd(d.file, settings.cwd) })), ...result.diagnostics]
  const seconds = (performance.now() - started) / 1000

  if (format === 'json') io.stdout(JSON.stringify(diagnostics.map(({ file, line, column, path, code, message, severity }) => ({ file, line, column, path, code, message, severity }))))
  else for (const d of diagnostics) io.stdout(formatDiagnostic(d))

  const errors = diagnostics.filter((d) => d.severity === 'error').length
  const warnings = diagnostics.length - errors
  const fileCount = result.files.length + (config.file ? 1 : 0)
  io.stderr(`${fileCount} file${fileCount === 1 ? '' : 's'} checked in ${seconds.toFixed(2)} s: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`)
  if (diagnostics.some((d) => d.code === 'PATH_NOT_FOUND')) return EXIT.usage
  return errors > 0 ? EXIT.failed : EXIT.ok
}

function relativeToCwd(file: string, cwd: string): string {
  return file.startsWith(`${cwd}/`) ? file.slice(cwd.length + 1) : file
}
