/**
 * The built-in trainer's ranks read the dataset's Parquet files as the task user, which owns neither
 * the files nor the folders (cairn's user does). CAIRN_HOME is 0711 (traversable, not listable), and
 * with the usual umask 022 the dataset folders are 0755 and files 0644, so nothing is needed; under a
 * stricter umask (077, as some service managers set) they would be unreadable. This grants "other"
 * traverse on the folders from the datasets directory down and read on the files, nothing more.
 */
import { chmod, stat } from 'node:fs/promises'
import path from 'node:path'

export async function grantTaskRead(datasetsDir: string, files: readonly string[]): Promise<string[]> {
  const root = path.resolve(datasetsDir)
  const changed: string[] = []
  const folders = new Set<string>()
  for (const file of files) {
    let dir = path.dirname(path.resolve(file))
    while (dir.startsWith(root + path.sep) || dir === root) {
      folders.add(dir)
      if (dir === root) break
      dir = path.dirname(dir)
    }
  }
  const ensure = async (p: string, bits: number): Promise<void> => {
    const mode = (await stat(p)).mode & 0o7777
    if ((mode & bits) !== bits) {
      await chmod(p, mode | bits)
      changed.push(p)
    }
  }
  for (const dir of folders) await ensure(dir, 0o001)
  for (const file of files) await ensure(file, 0o004)
  return changed
}
