/**
 * Keeps a server's repository on the registry's state: LISTEN on `cairn_models` (a trigger of
 * migration 0016 sends the model's name whenever a version's stage or traffic share changes, at
 * commit), read the routed versions, apply them. Reads never overlap: a notice that arrives during
 * one asks for one more read after it. A periodic read backs the notices up, and a lost LISTEN
 * connection reads again as soon as it is back (notices sent meanwhile are lost).
 */
import type { Logger } from 'pino'
import type { Db } from '../store/db.ts'
import { MODELS_CHANNEL, readRoutingSnapshot } from '../store/serving.ts'
import type { ModelRepository } from './model-repository.ts'

export interface RegistryFollower {
  /** Reads and applies now (resolves when the registry state as of this call is applied). */
  refresh(): Promise<void>
  close(): Promise<void>
}

export interface RegistryFollowerOptions {
  db: Db
  log: Logger
  repository: ModelRepository
  /** Read this often even without a notice. @default 5000 */
  pollMs?: number
  /** Called after each applied read. */
  onApplied?: () => void
}

export async function startRegistryFollower(options: RegistryFollowerOptions): Promise<RegistryFollower> {
  const { db, log, repository } = options
  let running: Promise<void> | undefined
  let again: Promise<void> | undefined
  let closed = false

  async function once(): Promise<void> {
    try {
      const snapshot = await readRoutingSnapshot(db)
      if (closed) return
      await repository.apply(snapshot)
      options.onApplied?.()
    } catch (error) {
      log.warn({ err: error }, 'reading the model registry failed; serving the last state read')
    }
  }

  /** One read at a time; calls during a read share the one read that follows it. */
  function refresh(): Promise<void> {
    if (!running) {
      running = once().finally(() => (running = undefined))
      return running
    }
    again ??= running.then(() => {
      again = undefined
      return refresh()
    })
    return again
  }

  let unlisten: (() => Promise<void>) | undefined
  try {
    unlisten = await db.listen(MODELS_CHANNEL, () => void refresh(), { onReconnect: () => void refresh() })
  } catch (error) {
    log.warn({ err: error }, 'LISTEN for model registry changes failed; following the registry by polling only')
  }
  await refresh()
  const timer = setInterval(() => {
    repository.sweep()
    void refresh()
  }, options.pollMs ?? 5000)
  timer.unref()

  return {
    refresh,
    async close() {
      closed = true
      clearInterval(timer)
      await unlisten?.()
      await running
    },
  }
}
