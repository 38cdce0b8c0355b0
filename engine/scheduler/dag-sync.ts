/**
 * Keeps the database in step with the DAG folder. Only files whose size or modification time
 * changed are validated again; a valid file becomes a new DAG version when its spec changed, an
 * invalid one is recorded as an import error and its DAG keeps running its last good version.
 */
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Logger } from 'pino'
import { collectYamlFiles, validateFile } from '../dag/validate-folder.ts'
import type { DeploymentNames } from '../dag/dag-semantics.ts'
import { normalizeDag } from '../dag/dag-model.ts'
import type { Queryable } from '../store/queryable.ts'
import { saveDagVersion, setImportErrors, clearImportErrorsExcept } from '../store/dags.ts'

interface Seen {
  stamp: string
  dagId: string | undefined
  ok: boolean
}

export interface DagSync {
  /** Returns the ids of DAGs whose version changed in this pass. */
  sync(q: Queryable): Promise<{ changed: string[]; files: number; errors: number }>
}

export function createDagSync(options: { folder: string; cwd: string; names: DeploymentNames | undefined; log: Logger }): DagSync {
  const seen = new Map<string, Seen>()
  return {
    async sync(q) {
      const { files } = collectYamlFiles([options.folder], options.cwd)
      const changed: string[] = []
      let errors = 0
      for (const file of files) {
        const path = resolve(options.cwd, file)
        let stamp: string
        try {
          const st = statSync(path)
          stamp = `${st.size}:${st.mtimeMs}`
        } catch {
          continue
        }
        const before = seen.get(file)
        if (before && before.stamp === stamp) {
          if (!before.ok) errors++
          continue
        }
        const summary = validateFile(file, options.names ? { names: options.names } : {}, true, path)
        const ok = summary.diagnostics.every((d) => d.severity !== 'error')
        if (summary.kind === 'feature_view') {
          seen.set(file, { stamp, dagId: undefined, ok })
          await setImportErrors(q, file, undefined, ok ? null : summary.diagnostics)
          if (!ok) errors++
          continue
        }
        if (!ok || !summary.value) {
          errors++
          const first = summary.diagnostics.find((d) => d.severity === 'error')
          options.log.warn({ file, problems: summary.diagnostics.length, first: first ? `${first.line}:${first.column} ${first.code} ${first.message}` : undefined }, 'DAG file has errors; its last good version keeps running')
          await setImportErrors(q, file, summary.id, summary.diagnostics)
          seen.set(file, { stamp, dagId: summary.id, ok: false })
          continue
        }
        const spec = normalizeDag(summary.value)
        const hash = createHash('sha256').update(JSON.stringify(spec)).digest('hex')
        const source = readFileSync(path, 'utf8')
        const { changed: isNew, versionId } = await saveDagVersion(q, { spec, file, source, hash })
        await setImportErrors(q, file, spec.id, null)
        if (isNew) {
          changed.push(spec.id)
          options.log.info({ dag: spec.id, file, version: versionId }, 'DAG loaded')
        }
        seen.set(file, { stamp, dagId: spec.id, ok: true })
      }
      for (const file of [...seen.keys()]) if (!files.includes(file)) seen.delete(file)
      await clearImportErrorsExcept(q, files)
      await q.query('UPDATE cairn.dag SET removed = true, updated_at = now() WHERE NOT removed AND NOT (file = ANY($1::text[]))', [files])
      return { changed, files: files.length, errors }
    },
  }
}
