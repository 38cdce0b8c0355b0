/**
 * Where `{{ secrets.NAME }}` comes from: the environment variable `CAIRN_SECRET_<NAME>` (NAME
 * upper-cased), else the file `<dir>/<NAME>` of the configured secrets dir (Docker and Kubernetes
 * mount secrets this way). The environment wins so a deployment can override a mounted file.
 *
 * Nothing is read up front: `get` looks a secret up when a template uses it, so a task only ever
 * loads the secrets it references (and the worker only masks those).
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'

export interface SecretStore {
  /** The secret's value, or undefined when it is not set anywhere. Throws on a refused name or an unreadable file. */
  get(name: string): string | undefined
}

export interface SecretStoreOptions {
  /** The environment to read `CAIRN_SECRET_*` from (the worker passes its own). */
  env: Readonly<Record<string, string | undefined>>
  /** Folder holding one file per secret. @default none (environment only) */
  dir?: string
}

/**
 * Letters, digits, `_`, `-` and `.`, not starting with `.`: no `/`, no `..`, so a name can never
 * leave the secrets dir (also not through Kubernetes' `..data` links) or name a hidden file.
 */
const SECRET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/
const MAX_SECRET_BYTES = 1024 * 1024

export function isValidSecretName(name: string): boolean {
  return name.length <= 255 && SECRET_NAME.test(name) && !name.includes('..')
}

export function createSecretStore(options: SecretStoreOptions): SecretStore {
  const { env, dir } = options
  return {
    get(name) {
      if (!isValidSecretName(name)) {
        // The name is not repeated in any message: it may be computed from another secret's value.
        throw new Error('invalid secret name: use letters, digits, _, - and . (no /, no ..)')
      }
      const fromEnv = env[`CAIRN_SECRET_${name.toUpperCase()}`]
      if (fromEnv !== undefined) return fromEnv
      if (dir === undefined) return undefined
      const file = path.join(dir, name)
      let text: string
      try {
        const buffer = readFileSync(file)
        if (buffer.length > MAX_SECRET_BYTES) throw new Error(`larger than ${MAX_SECRET_BYTES} bytes`)
        text = buffer.toString('utf8')
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'ENOENT') return undefined
        // Neither the name nor the path (which holds the name) goes into the message.
        throw new Error(`cannot read a secret's file in the secrets dir (${code ?? (error instanceof Error ? error.message : String(error))})`)
      }
      // One trailing newline is what `echo` and editors add; anything before it is the secret.
      return text.replace(/\r?\n$/, '')
    },
  }
}
