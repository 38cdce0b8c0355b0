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
import { toStoredSpec } from './spec-format.ts'
import { normalizeFeatureView } from '../data/feature-definition.ts'
import type { LoadedFeatureView } from '../data/feature-definition.ts'

export interface LoadedFile {
  file: string
  kind: FileKind | undefined
  /** The `dag` (or `feature_view`) value when it is a string, even when the file has other errors. */
  id: string | undefined
  diagnostics: Diagnostic[]
  /** No errors of its own (a duplicate id is decided later, across files). */
  ok: boolean
  /**
   * Present for a valid DAG file: what a new version stores. The spec travels as JSON text (one string
   * to copy between threads and to send to Postgres, not thousands of small objects to allocate).
   */
  dag?: { id: string; pausedOnLoad: boolean; hash: string; specJson: string; source: string }
  /** Present for a valid feature view file: its normalized definition and the YAML text. */
  featureView?: LoadedFeatureView & { source: string }
}

function loadDagFile(file: string, bytes: Uint8Array, names: DeploymentNames | undefined): LoadedFile {
  const result = validateSource(file, bytes, names ? { names } : {})
  const idKey = result.kind === 'feature_view' ? 'feature_view' : 'dag'
  const raw = result.value?.[idKey]
  const id = typeof raw === 'string' ? raw : undefined
  const ok = result.ok && !hasErrors(result.diagnostics)
  const loaded: LoadedFile = { file, kind: result.kind, id, diagnostics: result.diagnostics, ok }
  if (ok && result.kind === 'dag' && result.value) {
    const spec: DagSpec = normalizeDag(result.value)
    // Stored with its format version (spec-format.ts), so a later cairn can read it after an upgrade.
    const specJson = JSON.stringify(toStoredSpec(spec))
    loaded.dag = { id: spec.id, pausedOnLoad: spec.pausedOnLoad, hash: createHash('sha256').update(specJson).digest('hex'), specJson, source: new TextDecoder().decode(bytes) }
  }
  if (ok && result.kind === 'feature_view' && result.value) {
    loaded.featureView = { ...normalizeFeatureView(result.value), source: new TextDecoder().decode(bytes) }
  }
  return loaded
}

/** What reading one file gives: its content hash, and the file loaded unless its content is the one already known. */
export type ReadResult = { file: string; missing: true } | { file: string; missing: false; contentHash: string; loaded: LoadedFile | undefined }

export function contentHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

export function loadIfChanged(file: string, bytes: Uint8Array, knownHash: string | undefined, names: DeploymentNames | undefined): ReadResult {
  const hash = contentHash(bytes)
  return { file, missing: false, contentHash: hash, loaded: hash === knownHash ? undefined : loadDagFile(file, bytes, names) }
}
