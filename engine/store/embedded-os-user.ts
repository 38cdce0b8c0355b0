/**
 * Postgres refuses to run as root. When cairn runs as root, the embedded server and initdb run as the
 * OS user `postgres` instead (created when missing), and everything they touch must be theirs: the
 * data dir, and search permission on every folder above it.
 */
import { execFile, spawn } from 'node:child_process'
import { chmod, chown, readdir, stat } from 'node:fs/promises'
import { basename, join, parse } from 'node:path'
import { promisify } from 'node:util'
import type { Logger } from 'pino'

const execFileAsync = promisify(execFile)

const OS_USER = 'postgres'

export interface RunAs {
  uid: number
  gid: number
}

/** undefined when not root (Postgres runs as us); else the ids of OS_USER, created when missing. */
export async function resolveRunAs(log: Logger): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined
  const ids = async (): Promise<RunAs> => ({
    uid: Number((await execFileAsync('id', ['-u', OS_USER])).stdout.trim()),
    gid: Number((await execFileAsync('id', ['-g', OS_USER])).stdout.trim()),
  })
  try {
    return await ids()
  } catch {
    log.warn({ user: OS_USER }, 'running as root: creating system user to run the embedded Postgres as')
    try {
      await execFileAsync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', OS_USER])
      return await ids()
    } catch (error) {
      throw new Error(`Postgres cannot run as root and the OS user "${OS_USER}" does not exist and could not be created (${(error as Error).message.trim()}); create it, run cairn as another user, or set DATABASE_URL`)
    }
  }
}

/** Lets `runAs` traverse every folder from the root down to `dir` (adding o+x where it cannot). */
export async function grantTraversal(dir: string, runAs: RunAs, log: Logger, who = 'the embedded Postgres'): Promise<void> {
  const { root } = parse(dir)
  const parts = dir.slice(root.length).split('/').filter(Boolean)
  for (let i = 0; i <= parts.length; i++) {
    const folder = join(root, ...parts.slice(0, i))
    const st = await stat(folder)
    const traversable = st.uid === runAs.uid ? st.mode & 0o100 : st.gid === runAs.gid ? st.mode & 0o010 : st.mode & 0o001
    if (!traversable) {
      log.warn({ dir: folder }, `adding search permission (o+x) so ${who} can reach ${dir}`)
      await chmod(folder, (st.mode & 0o7777) | 0o001)
    }
  }
}

/** Runs a Postgres tool (as `runAs` when given) and resolves to its output; rejects with it on failure. */
export function runAsUser(bin: string, args: string[], runAs: RunAs | undefined): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(bin, args, { ...runAs, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.once('error', fail)
    child.once('close', (code, signal) => (code === 0 ? done(output) : fail(new Error(`${basename(bin)} failed (${signal ?? `exit ${code}`}): ${output.trim()}`))))
  })
}

/** Postgres refuses a data dir it does not own or that others can read. */
export async function ensureOwnership(dataDir: string, runAs: RunAs | undefined, log: Logger): Promise<void> {
  const st = await stat(dataDir)
  if (runAs && st.uid !== runAs.uid) {
    log.warn({ dataDir, user: OS_USER }, 'giving the data dir to the user the embedded Postgres runs as')
    await chownTree(dataDir, runAs)
  }
  if ((st.mode & 0o077) & ~0o050) await chmod(dataDir, 0o700)
}

async function chownTree(path: string, runAs: RunAs): Promise<void> {
  await chown(path, runAs.uid, runAs.gid)
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const child = join(path, entry.name)
    if (entry.isDirectory()) await chownTree(child, runAs)
    else await chown(child, runAs.uid, runAs.gid)
  }
}
