/**
 * cairn's own files stay cairn's: CAIRN_HOME loses read and write for group and others (it keeps
 * search, so the task user can reach its attempt folders under work/ and the postgres user its data
 * dir, both 0700), a secrets dir inside it becomes 0700, and a secrets dir elsewhere that the task
 * user could read stops the worker with a message (chmod is the operator's call there).
 */
import { chmod, mkdir, readdir, stat } from 'node:fs/promises'
import { join, relative } from 'node:path'
import type { Stats } from 'node:fs'
import type { Logger } from 'pino'
import type { TaskUser } from '../process/task-user.ts'

export async function securePrivateState(home: string, secretsDir: string | undefined, user: TaskUser | undefined, log: Logger): Promise<void> {
  const own = process.getuid?.()
  await mkdir(home, { recursive: true, mode: 0o711 })
  const homeStat = await stat(home).catch(() => undefined)
  if (homeStat && homeStat.uid === own && homeStat.mode & 0o066) {
    log.info({ home }, 'CAIRN_HOME: removing read and write for group and others')
    await chmod(home, homeStat.mode & 0o7711)
  }
  if (secretsDir === undefined) return
  const inside = relative(home, secretsDir)
  const dirStat = await stat(secretsDir).catch(() => undefined)
  if (!dirStat) return
  if (!inside.startsWith('..') && inside !== '' && dirStat.uid === own) {
    if (dirStat.mode & 0o077) await chmod(secretsDir, 0o700)
    return
  }
  if (!user || !canUse(dirStat, user, 0o1)) return
  const readable: string[] = []
  for (const name of await readdir(secretsDir).catch(() => [])) {
    const st = await stat(join(secretsDir, name)).catch(() => undefined)
    if (st?.isFile() && canUse(st, user, 0o4)) readable.push(name)
  }
  if (readable.length > 0) {
    throw new Error(`the secrets dir ${secretsDir} lets the task user ${user.name} read ${readable.join(', ')}; make it private to cairn's user (chmod 700 ${secretsDir}) so a task sees only the secrets its templates name`)
  }
}

/** Whether `user` (with no supplementary groups, as tasks run) has permission `bit` (1 x, 2 w, 4 r) on a file. */
function canUse(st: Stats, user: TaskUser, bit: number): boolean {
  if (st.uid === user.uid) return (st.mode & (bit << 6)) !== 0
  if (st.gid === user.gid) return (st.mode & (bit << 3)) !== 0
  return (st.mode & bit) !== 0
}
