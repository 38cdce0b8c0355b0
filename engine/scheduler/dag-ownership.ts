/**
 * Which file a DAG id belongs to when several files declare it. Pure: the files as loaded and the
 * DAG rows as stored in, the decision out.
 *
 * - The file that owns a DAG in the database keeps it for as long as that file exists, unless the
 *   file now loads cleanly as something else (another DAG id nobody else holds, or a feature view):
 *   then it has let the DAG go. A broken file, or one whose id cannot be read, keeps its DAG.
 * - A DAG nobody holds goes to the file that declared it first: the oldest modification time, then
 *   the path (a fresh database, or the owner's file was deleted).
 * - Every other file declaring that id is a duplicate: an import error on that file; it changes
 *   nothing in the DAG.
 * So no change to another file (adding, editing or deleting a duplicate) can take or alter a DAG
 * whose own file still exists.
 */
import type { FileKind } from '../dag/validate.ts'
import { firstDeclared } from '../dag/first-declared.ts'

export interface FileClaim {
  file: string
  kind: FileKind | undefined
  id: string | undefined
  /** The file has no errors of its own. */
  ok: boolean
  mtimeMs: number
}

export interface StoredDag {
  file: string | null
  removed: boolean
}

export interface Ownership {
  /** DAG id -> the file it belongs to now. */
  owners: Map<string, string>
  /** File -> the id it declares and the file that keeps that id. */
  duplicates: Map<string, { dagId: string; owner: string }>
}

/** `kind`: which ids are decided (feature view names follow the same rules as DAG ids). */
export function decideOwnership(files: readonly FileClaim[], stored: ReadonlyMap<string, StoredDag>, kind: 'dag' | 'feature_view' = 'dag'): Ownership {
  const byFile = new Map(files.map((f) => [f.file, f]))
  const claimants = new Map<string, FileClaim[]>()
  for (const f of files) {
    if (f.kind !== kind || f.id === undefined) continue
    let list = claimants.get(f.id)
    if (!list) claimants.set(f.id, (list = []))
    list.push(f)
  }
  /** The stored owner of `dagId`, when its file exists and still declares it (or cannot say). */
  const storedHolder = (dagId: string): FileClaim | undefined => {
    const row = stored.get(dagId)
    if (!row || row.removed || row.file === null) return undefined
    return byFile.get(row.file)
  }
  /** One level deep on purpose: a file that moves to an id whose owner is moving away too lets go. */
  const heldByOther = (dagId: string, file: string): boolean => {
    const holder = storedHolder(dagId)
    return holder !== undefined && holder.file !== file && (!holder.ok || (holder.kind === kind && (holder.id === dagId || holder.id === undefined)))
  }
  const letsGo = (f: FileClaim, dagId: string): boolean => f.ok && (f.kind !== kind || (f.id !== dagId && f.id !== undefined && !heldByOther(f.id, f.file)))

  const owners = new Map<string, string>()
  const duplicates = new Map<string, { dagId: string; owner: string }>()
  const ids = new Set([...claimants.keys(), ...[...stored.keys()].filter((id) => storedHolder(id) !== undefined)])
  for (const dagId of [...ids].sort()) {
    const holder = storedHolder(dagId)
    let owner: string | undefined
    if (holder && !letsGo(holder, dagId)) owner = holder.file
    else owner = [...(claimants.get(dagId) ?? [])].sort(firstDeclared)[0]?.file
    if (owner === undefined) continue
    owners.set(dagId, owner)
    for (const c of claimants.get(dagId) ?? []) if (c.file !== owner) duplicates.set(c.file, { dagId, owner })
  }
  return { owners, duplicates }
}
