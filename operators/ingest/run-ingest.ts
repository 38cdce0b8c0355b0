/** One attempt of `ingest`; operators/ingest.ts loads this module (and DuckDB with it) only when a task runs. */
import { mkdir, rm } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { openDuckDb } from '../../engine/data/duckdb.ts'
import type { DuckDb } from '../../engine/data/duckdb.ts'
import type { DataServices } from '../../engine/data/data-services.ts'
import { abortedResult, noDataServicesResult } from '../define.ts'
import type { OperatorContext, OperatorResult } from '../define.ts'
import type { ReadFailure } from '../../engine/data/reader/failure.ts'
import { invalid, isFailure } from '../../engine/data/reader/failure.ts'
import type { IngestParams } from './params.ts'
import { declaredColumns } from './params.ts'
import { resolveSourceFiles } from './paths.ts'
import type { SourceFile } from '../../engine/data/reader/csv.ts'
import { readFiles } from '../../engine/data/reader/read-files.ts'
import type { StagedVersion } from '../../engine/data/datasets.ts'
import { loadPostgres } from './postgres.ts'
import { download, publicUrl } from './http.ts'
import type { LoadContext, LoadedSource, WrittenSource } from '../../engine/data/reader/loaded.ts'
import { publishRows } from './publish-rows.ts'
import type { Published } from './publish-rows.ts'

export async function ingestAttempt(rendered: Record<string, unknown>, ctx: OperatorContext): Promise<OperatorResult> {
  // Valid against the params schema (the worker checked it), so the shape is IngestParams.
  const params = rendered as unknown as IngestParams
  if (!ctx.data) return noDataServicesResult()
  const scratch = join(ctx.workdir, 'ingest')
  await mkdir(scratch, { recursive: true })
  try {
    const outcome = await runIngest(params, ctx, ctx.data, scratch)
    if (ctx.signal.aborted) return abortedResult(ctx.signal)
    if (isFailure(outcome)) return { ok: false, kind: outcome.kind, retryable: outcome.retryable, message: outcome.message }
    return { ok: true, outputs: { ...outcome } }
  } catch (error) {
    if (ctx.signal.aborted) return abortedResult(ctx.signal)
    throw error
  } finally {
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined)
  }
}

export async function runIngest(params: IngestParams, ctx: OperatorContext, data: DataServices, scratch: string): Promise<Published | ReadFailure> {
  const duck = await openDuckDb({ ...data.duckdb, tempDir: join(scratch, 'duckdb-spill') })
  // A cancel or timeout interrupts the statement DuckDB is running.
  const interrupt = () => duck.connection.interrupt()
  ctx.signal.addEventListener('abort', interrupt, { once: true })
  try {
    const load: LoadContext = { duck, declared: declaredColumns(params), log: ctx.log }
    const loaded = await loadSource(params, ctx, data, load, scratch)
    if (isFailure(loaded)) return loaded
    if (ctx.signal.aborted) {
      if ('written' in loaded.source) await loaded.source.staged.discard()
      return invalid('aborted')
    }
    return await publishRows({
      duck,
      params,
      loaded: loaded.source,
      datasets: data.datasets,
      interval: ctx.interval,
      taskInstance: { runId: ctx.runId, taskId: ctx.taskId },
      log: ctx.log,
      source: loaded.described,
    })
  } finally {
    ctx.signal.removeEventListener('abort', interrupt)
    closeQuietly(duck)
  }
}

async function loadSource(params: IngestParams, ctx: OperatorContext, data: DataServices, load: LoadContext, scratch: string): Promise<{ source: LoadedSource | WrittenSource; described: Record<string, unknown> } | ReadFailure> {
  const source = params.source
  switch (source.kind) {
    case 'csv':
    case 'jsonl':
    case 'parquet': {
      const found = await resolveSourceFiles(source.path, data)
      if (isFailure(found)) return found
      const files = found.files.map((path): SourceFile => ({ path, label: labelOf(path, data.dagsFolder) }))
      const labels = files.map((f) => f.label)
      ctx.log.info(`reading ${files.length} ${source.kind} file${files.length === 1 ? '' : 's'}: ${labels.slice(0, 10).join(', ')}${files.length > 10 ? ', ...' : ''}`)
      const loaded = await readFiles(source.kind, files, source.options ?? {}, load, fastPath(params, data))
      // The version's details name the files read (the first hundred, for a glob matching thousands).
      return isFailure(loaded) ? loaded : { source: loaded, described: { kind: source.kind, path: source.path, file_count: files.length, files: labels.slice(0, 100) } }
    }
    case 'http': {
      const target = join(scratch, `download.${source.format}`)
      const shown = publicUrl(source.url)
      ctx.log.info(`downloading ${shown}`)
      const got = await download(source, target, ctx.signal, ctx.log)
      if (isFailure(got)) return got
      const loaded = await readFiles(source.format, [{ path: target, label: shown }], source.options ?? {}, load, fastPath(params, data))
      return isFailure(loaded) ? loaded : { source: loaded, described: { kind: 'http', url: shown, format: source.format, bytes: got.bytes } }
    }
    case 'postgres': {
      const connection = data.connection(source.connection)
      if ('error' in connection) return invalid(connection.error)
      if (connection.kind !== 'postgres') return invalid(`connection ${source.connection} is of kind ${connection.kind}; a postgres source needs a postgres connection`)
      ctx.log.info(`running the query on connection ${source.connection}`)
      const loaded = await loadPostgres(connection, source.query, load, ctx.signal, source.batch_rows)
      return isFailure(loaded) ? loaded : { source: loaded, described: { kind: 'postgres', connection: source.connection, query: source.query } }
    }
  }
}

/** A staged version for the CSV fast path, unless the mode needs the rows in a table (interval filters and sorts them). */
function fastPath(params: IngestParams, data: DataServices): (() => Promise<StagedVersion>) | undefined {
  return params.mode === 'interval' ? undefined : () => data.datasets.stage(params.dataset)
}

/** A file as messages name it: relative to the DAG folder when inside it. */
function labelOf(path: string, dagsFolder: string): string {
  const rel = relative(dagsFolder, path)
  return rel.startsWith('..') ? path : rel
}

function closeQuietly(duck: DuckDb): void {
  try {
    duck.close()
  } catch {
    // Already closed by an interrupt; nothing to release.
  }
}
