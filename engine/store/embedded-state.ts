/**
 * `cairn-embedded.json` in the embedded cluster's data dir (mode 0600): the superuser's name and
 * password, the database, the last port and the pid of the process that owns the running server.
 */
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'

export const EMBEDDED_STATE_FILE = 'cairn-embedded.json'

export interface EmbeddedState {
  user: string
  password: string
  database: string
  port: number | null
  ownerPid: number | null
}

/**
 * The URL of the cluster in `dataDir` as recorded by its last start, or undefined when there is none. For
 * CLI commands that talk to the database of a running `cairn up` (it does not check that one is running).
 */
export async function readEmbeddedUrl(dataDir: string): Promise<string | undefined> {
  const state = await readEmbeddedState(resolve(dataDir))
  return state?.port ? connectionUrl(state, state.port, state.database) : undefined
}

export function connectionUrl(state: EmbeddedState, port: number, database: string): string {
  return `postgres://${encodeURIComponent(state.user)}:${encodeURIComponent(state.password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`
}

export async function readEmbeddedState(dataDir: string): Promise<EmbeddedState | undefined> {
  try {
    return JSON.parse(await readFile(join(dataDir, EMBEDDED_STATE_FILE), 'utf8')) as EmbeddedState
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** Atomic (write + rename) so a crash never leaves a torn file holding the only copy of the password. */
export async function writeEmbeddedState(dataDir: string, state: EmbeddedState): Promise<void> {
  const file = join(dataDir, EMBEDDED_STATE_FILE)
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 })
  await rename(tmp, file)
}
