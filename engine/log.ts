/**
 * The engine's own structured logs (pino) on stderr: one JSON object per line for machines (files,
 * journald, log shippers), or pino-pretty's readable lines (time, level, message, then the fields)
 * for a person at a terminal.
 */
import { createRequire } from 'node:module'
import { pino } from 'pino'
import type { DestinationStream, Logger } from 'pino'

export type { Logger }

export const LOG_FORMATS = ['pretty', 'json'] as const
export type LogFormat = (typeof LOG_FORMATS)[number]

export interface LoggerOptions {
  level?: string
  name?: string
  /** @default "json" */
  format?: LogFormat
  /** Colours in pretty lines. @default false */
  colorize?: boolean
}

/** `--log-format` when given, else pretty on a terminal and JSON anywhere else (a pipe, a file, journald). */
export function chooseLogFormat(option: LogFormat | undefined, stderrIsTTY: boolean): LogFormat {
  return option ?? (stderrIsTTY ? 'pretty' : 'json')
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const config = { level: options.level ?? 'info', base: { name: options.name ?? 'cairn', pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }
  return pino(config, options.format === 'pretty' ? prettyStream(options.colorize ?? false) : pino.destination({ fd: 2, sync: false }))
}

/**
 * pino-pretty as a stream in this thread (not a transport worker): a person reading a terminal
 * writes few lines per second, and a synchronous write keeps the last lines before an exit.
 */
function prettyStream(colorize: boolean): DestinationStream {
  // Loaded only for a terminal: JSON logging and one-shot commands never pay for it.
  const pretty = createRequire(import.meta.url)('pino-pretty') as (options: Record<string, unknown>) => DestinationStream
  return pretty({
    destination: 2,
    sync: true,
    colorize,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: 'pid,hostname,name',
    singleLine: true,
  })
}

/** A logger that drops everything, for tests and tools that have nothing to say. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
