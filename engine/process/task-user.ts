/**
 * The OS user task processes run as (`workers.run_as` in cairn.yaml).
 *
 * Removing variables from a child's environment is not isolation: a process running as cairn's own
 * user can read `/proc/<worker pid>/environ` (the environment the worker started with, secrets
 * included, whatever the worker later deletes from `process.env`), cairn's state files and the
 * embedded database's password. Only another uid keeps a task out of them, because Linux lets a
 * process read another uid's environ only with ptrace rights over it, and file modes 0600/0700 do
 * the rest.
 *
 * - cairn runs as root: tasks run as `run_as`, by default the system user `cairn-task` (created when
 *   missing: no login shell, no home). Never as root.
 * - cairn runs as an ordinary user: tasks run as that same user (documented as the weaker setup in
 *   docs/security.md), unless `run_as` names another, which needs root.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { Logger } from 'pino'

const execFileAsync = promisify(execFile)

export const DEFAULT_TASK_USER = 'cairn-task'

export interface TaskUser {
  name: string
  uid: number
  gid: number
}

export interface TaskUserHost {
  /** The uid cairn runs as. */
  uid: number
  /** uid and gid of a user name, or undefined when there is no such user. */
  lookup(name: string): Promise<{ uid: number; gid: number } | undefined>
  /** Creates a system user without login shell and home. */
  create(name: string): Promise<void>
}

/**
 * Whom tasks run as: a user to switch to, or undefined when they run as cairn's own user. Throws
 * with a message for the operator when `run_as` cannot be honoured.
 */
export async function resolveTaskUser(runAs: string | undefined, log: Logger, host: TaskUserHost = systemHost()): Promise<TaskUser | undefined> {
  const root = host.uid === 0
  if (runAs === undefined && !root) return undefined
  const name = runAs ?? DEFAULT_TASK_USER
  let ids = await host.lookup(name)
  if (!ids) {
    if (!(root && name === DEFAULT_TASK_USER)) {
      throw new Error(`workers.run_as: the OS user "${name}" does not exist; create it (useradd --system --no-create-home --shell /usr/sbin/nologin ${name}) or name another`)
    }
    log.warn({ user: name }, 'running as root: creating the system user tasks run as')
    try {
      await host.create(name)
    } catch (error) {
      // Another worker on this machine may have created it at the same moment.
      if (await host.lookup(name)) return resolveTaskUser(runAs, log, host)
      throw new Error(`tasks must not run as root and the OS user "${name}" does not exist and could not be created (${errorMessage(error)}); create it or set workers.run_as`)
    }
    ids = await host.lookup(name)
    if (!ids) throw new Error(`the OS user "${name}" was created but cannot be looked up`)
  }
  if (ids.uid === 0) throw new Error(`workers.run_as: "${name}" is root (uid 0); tasks never run as root, name an unprivileged user`)
  if (ids.uid === host.uid) return undefined
  if (!root) {
    throw new Error(`workers.run_as: running tasks as "${name}" needs cairn to run as root (it runs as uid ${host.uid}); remove run_as to run tasks as cairn's own user, or start cairn as root`)
  }
  return { name, uid: ids.uid, gid: ids.gid }
}

function systemHost(): TaskUserHost {
  return {
    uid: process.getuid?.() ?? -1,
    async lookup(name) {
      try {
        const uid = Number((await execFileAsync('id', ['-u', '--', name])).stdout.trim())
        const gid = Number((await execFileAsync('id', ['-g', '--', name])).stdout.trim())
        return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined
      } catch {
        return undefined
      }
    },
    async create(name) {
      await execFileAsync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', name])
    },
  }
}

function errorMessage(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).trim()
}
