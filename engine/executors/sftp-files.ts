/**
 * File operations over an SFTP session (ssh2): the ssh executor fetches rank 0's artifacts with them, the
 * Slurm executor writes a job's script and reads its output files on a login node. Paths are remote POSIX
 * paths; nothing here goes through a shell.
 */
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { FileEntry, SFTPWrapper, Stats } from 'ssh2'

/** SFTP status code of a missing file (SSH_FX_NO_SUCH_FILE). */
const NO_SUCH_FILE = 2

export function sftpStat(sftp: SFTPWrapper, remote: string): Promise<Stats | undefined> {
  return new Promise((resolve, reject) =>
    sftp.stat(remote, (error, stats) => {
      if (!error) return resolve(stats)
      if ((error as { code?: unknown }).code === NO_SUCH_FILE) return resolve(undefined)
      reject(new Error(`${remote}: ${error.message}`))
    }),
  )
}

/** Creates `dir` and its missing parents. */
export async function sftpMkdirP(sftp: SFTPWrapper, dir: string): Promise<void> {
  const parts = path.posix.resolve(dir).split('/').filter((part) => part !== '')
  let current = ''
  for (const part of parts) {
    current += `/${part}`
    const stats = await sftpStat(sftp, current)
    if (stats?.isDirectory()) continue
    if (stats !== undefined) throw new Error(`${current} exists and is not a folder`)
    await new Promise<void>((resolve, reject) =>
      sftp.mkdir(current, (error) => {
        // Created meanwhile by another job: fine when it is a folder now.
        if (!error) return resolve()
        void sftpStat(sftp, current).then((again) => (again?.isDirectory() ? resolve() : reject(new Error(`mkdir ${current}: ${error.message}`))), reject)
      }),
    )
  }
}

/** Writes a new file with the given mode (the server's umask may remove bits, never add them). */
export function sftpWriteFile(sftp: SFTPWrapper, remote: string, data: string, mode: number): Promise<void> {
  return new Promise((resolve, reject) => sftp.writeFile(remote, data, { mode }, (error) => (error ? reject(new Error(`${remote}: ${error.message}`)) : resolve())))
}

/** Reads up to `length` bytes of `remote` from `position`. */
export async function sftpReadAt(sftp: SFTPWrapper, remote: string, position: number, length: number): Promise<Buffer> {
  const handle = await new Promise<Buffer>((resolve, reject) => sftp.open(remote, 'r', (error, h) => (error ? reject(new Error(`${remote}: ${error.message}`)) : resolve(h))))
  try {
    const buffer = Buffer.alloc(length)
    let filled = 0
    while (filled < length) {
      const read = await new Promise<number>((resolve, reject) =>
        sftp.read(handle, buffer, filled, length - filled, position + filled, (error, bytesRead) => {
          // An SFTP read past the end answers EOF as an error: what was read so far is the answer.
          if (error) return (error as { code?: unknown }).code === 1 ? resolve(0) : reject(new Error(`${remote}: ${error.message}`))
          resolve(bytesRead)
        }),
      )
      if (read === 0) break
      filled += read
    }
    return buffer.subarray(0, filled)
  } finally {
    await new Promise<void>((resolve) => sftp.close(handle, () => resolve()))
  }
}

/**
 * Copies `remote` (a file or a folder, recursively) to `localRoot/relative`; every file copied is appended to
 * `fetched` as its relative path.
 */
export async function fetchRemote(sftp: SFTPWrapper, remote: string, relative: string, localRoot: string, fetched: string[]): Promise<void> {
  const stats = await new Promise<Stats>((resolve, reject) => sftp.stat(remote, (error, result) => (error ? reject(new Error(`${relative}: ${error.message}`)) : resolve(result))))
  const local = path.join(localRoot, ...relative.split('/'))
  if (stats.isDirectory()) {
    const entries = await new Promise<FileEntry[]>((resolve, reject) => sftp.readdir(remote, (error, list) => (error ? reject(new Error(`${relative}: ${error.message}`)) : resolve(list))))
    await mkdir(local, { recursive: true })
    for (const entry of entries) await fetchRemote(sftp, path.posix.join(remote, entry.filename), path.posix.join(relative, entry.filename), localRoot, fetched)
    return
  }
  await mkdir(path.dirname(local), { recursive: true })
  await new Promise<void>((resolve, reject) => sftp.fastGet(remote, local, (error) => (error ? reject(new Error(`${relative}: ${error.message}`)) : resolve())))
  fetched.push(relative)
}
