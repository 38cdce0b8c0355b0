/**
 * Defence in depth for API responses: workers already mask secrets in log lines and outputs, but a
 * secret can still reach a response another way (a run parameter, a message, a worker that lacked the
 * secret). The web process masks every JSON body and SSE line again with the secret values it can see:
 * its own `CAIRN_SECRET_*` variables and the files of the configured secrets dir.
 */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { createMasker } from '../secrets/mask.ts'
import type { Masker } from '../secrets/mask.ts'
import { createSecretStore, isValidSecretName } from '../secrets/secrets.ts'

export interface SecretSource {
  /** Environment to take `CAIRN_SECRET_*` values from. */
  env?: Readonly<Record<string, string | undefined>>
  /** Folder with one file per secret (secrets.dir of cairn.yaml). */
  dir?: string
}

/**
 * Every secret value the source holds now: each `CAIRN_SECRET_*` variable and each file of the dir,
 * read by the secret store's own rules (size limit, trailing newline). A file the environment
 * overrides is masked too. A missing or unreadable dir, or a file that cannot be read, holds none.
 */
export function readSecretValues(source: SecretSource): string[] {
  const values: string[] = []
  for (const [key, value] of Object.entries(source.env ?? {})) {
    if (key.startsWith('CAIRN_SECRET_') && value) values.push(value)
  }
  if (source.dir === undefined) return values
  const files = createSecretStore({ env: {}, dir: source.dir })
  let names: string[] = []
  try {
    names = readdirSync(source.dir)
  } catch {
    names = []
  }
  for (const name of names) {
    if (!isValidSecretName(name)) continue
    try {
      // Regular files only: reading a FIFO or a device in the dir would block or never end.
      if (!statSync(join(source.dir, name)).isFile()) continue
      const text = files.get(name)
      if (text) values.push(text)
    } catch {
      // a file that vanished, is too large or cannot be read masks nothing
    }
  }
  return values
}

/**
 * A masker over the source's values, re-read at most every `refreshMs` so a changed secrets dir is
 * picked up. The masker stays the same object while the values do (answers kept for a masker, as the
 * online fast path keeps its bodies, stay valid until a secret changes).
 */
export function createResponseMasker(source: SecretSource | undefined, refreshMs = 30_000, now: () => number = Date.now): () => Masker {
  let masker = createMasker([])
  let values: string[] = []
  let readAt = -Infinity
  return () => {
    if (source === undefined) return masker
    if (now() - readAt >= refreshMs) {
      const read = readSecretValues(source)
      if (read.length !== values.length || read.some((v, i) => v !== values[i])) {
        masker = createMasker(read)
        values = read
      }
      readAt = now()
    }
    return masker
  }
}
