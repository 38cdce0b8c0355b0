/**
 * Of several files declaring the same id, the one that declared it first: the oldest modification
 * time, then the path. `cairn validate` and the scheduler (on a DAG nobody holds yet) agree on it.
 */
export function firstDeclared(a: { file: string; mtimeMs: number }, b: { file: string; mtimeMs: number }): number {
  return a.mtimeMs - b.mtimeMs || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0)
}
