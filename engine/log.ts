/** The engine's own structured logs (pino), one JSON object per line on stderr. */
import { pino } from 'pino'
import type { Logger } from 'pino'

export type { Logger }

export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({ level: options.level ?? 'info', base: { name: options.name ?? 'cairn', pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: false }))
}

/** A logger that drops everything, for tests and tools that have nothing to say. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
