/**
 * One file of the DAG folder turned into what the scheduler stores: its kind and id, its
 * diagnostics, and for a valid DAG the normalized spec and its hash. Pure (bytes in, data out) and
 * structured-clone safe, so it runs on worker threads as well as on the main thread.
 */
import { createHash } from 'node:crypto'
import type { DagSpec } from './dag-model.ts'
import { normalizeDag } from './dag-model.ts'
import type { DeploymentNames } from './dag-semantics.ts'
import type { Diagnostic } from './diagnostics.ts'
import { hasErrors } from './diagnostics.ts'
import type { FileKind } from './validate.ts'
import { validateSource } from './validate.ts'

export interface LoadedFile {
  file: string
  kind: FileKind | undefined
  /** The `dag` (or `feature_view`) value when it is a string, even when the file has other errors. */
  id: string | undefined
  diagnostics: Diagnostic[]
  /** No errors of its own (a duplicate id is decided later, across files). */
  ok: boolean
  /** Present for a valid DAG file. */
  dag?: { spec: DagSpec; hash: string; source: string }
}

export function loadDagFile(file: string, bytes: Uint8Array, names: DeploymentNames | undefined): LoadedFile {
  const result = validateSource(file, bytes, names ? { names } : {})
  const idKey = result.kind === 'feature_view' ? 'feature_view' : 'dag'
  const raw = result.value?.[idKey]
  const id = typeof raw === 'string' ? raw : undefined
  const ok = result.ok && !hasErrors(result.diagnostics)
  const loaded: LoadedFile = { file, kind: result.kind, id, diagnostics: result.diagnostics, ok }
  if (ok && result.kind === 'dag' && result.value) {
    const spec = normalizeDag(result.value)
    loaded.dag = { spec, hash: createHash('sha256').update(JSON.stringify(spec)).digest('hex'), source: new TextDecoder().decode(bytes) }
  }
  return loaded
}
