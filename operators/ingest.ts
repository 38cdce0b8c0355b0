/**
 * `ingest` (SPEC sections 4 and 7): a source (csv, jsonl or parquet files, an http(s) download, a
 * postgres query) into a new version of a dataset. The steps live in ingest/: the source into a
 * DuckDB table with the dataset's types and each bad row's reason (files: engine/data/reader/, which
 * `cairn datasets import` reads with too; postgres.ts, http.ts), then bad rows, expectations, mode
 * and the one publish (publish-rows.ts).
 * DuckDB runs in memory for this attempt only, spilling into the attempt's folder.
 *
 * Failures: params that make no sense (a path outside the allowed folders, an unknown column in
 * `expect`) → invalid_params; bad rows, failed expectations, an oversized download → data_invalid;
 * neither is retried. An unreachable source (5xx, timeout, lost connection) or a dataset changed
 * meanwhile → infrastructure, retryable. Nothing is published by a failed or cancelled attempt.
 */
import paramsSchema from '../schemas/operators/ingest.params.schema.json' with { type: 'json' }
import { defineOperator } from './define.ts'
import type { OperatorContext, OperatorResult } from './define.ts'

export const ingest = defineOperator({
  type: 'ingest',
  summary: 'loads a source into a named, versioned dataset, with expectations',
  paramsSchema,
  async run(rendered: Record<string, unknown>, ctx: OperatorContext): Promise<OperatorResult> {
    // Loaded when a task runs: `cairn validate` and the scheduler never load DuckDB.
    const { ingestAttempt } = await import('./ingest/run-ingest.ts')
    return ingestAttempt(rendered, ctx)
  },
})
