/**
 * A postgres source: the query runs on a connection of cairn.yaml and its rows are read with a
 * cursor, a batch at a time, into DuckDB through an appender, so the worker never holds more than
 * one batch. Values arrive as Postgres' own text (no JS parsing: no float rounding of numerics, no
 * local-time dates) and are typed by typing.ts from the result's column types, or the declared ones.
 * A connection lost mid-stream fails the attempt as retryable; nothing has been published then.
 */
import pg from 'pg'
import Cursor from 'pg-cursor'
import type { FieldDef } from 'pg'
import type { ColumnType } from '../../engine/data/column-types.ts'
import { sqlIdent } from '../../engine/data/duckdb.ts'
import { dataInvalid, errorText, failure, invalid, unreachable } from '../../engine/data/reader/failure.ts'
import type { ReadFailure } from '../../engine/data/reader/failure.ts'
import { LOADED, missingColumnsMessage, planColumns } from '../../engine/data/reader/loaded.ts'
import type { LoadContext, LoadedSource } from '../../engine/data/reader/loaded.ts'
import { typedSelect } from '../../engine/data/reader/typing.ts'

export const DEFAULT_BATCH_ROWS = 10_000
const SOURCE_TABLE = 'pg_rows'

/** Postgres type OIDs (pg_type) with a dataset type of their own; every other type is read as text. */
const TYPE_OF_OID: Record<number, ColumnType> = {
  16: 'boolean', 20: 'integer', 21: 'integer', 23: 'integer', 26: 'integer',
  700: 'number', 701: 'number', 1700: 'number',
  1082: 'date', 1114: 'timestamp', 1184: 'timestamp',
}
const asText = { getTypeParser: () => (value: string) => value }

export async function loadPostgres(connection: { name: string; url: string }, query: string, ctx: LoadContext, signal: AbortSignal, batchRows = DEFAULT_BATCH_ROWS): Promise<LoadedSource | ReadFailure> {
  const label = `query on connection ${connection.name}`
  const client = new pg.Client({ connectionString: connection.url, types: asText })
  let dropped: Error | undefined
  client.on('error', (error) => {
    dropped = error
  })
  const stop = () => {
    const stream = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream
    stream?.destroy()
  }
  signal.addEventListener('abort', stop, { once: true })
  try {
    try {
      await client.connect()
    } catch (error) {
      return unreachable(`connection ${connection.name}: cannot connect (${scrub(errorText(error), connection.url)}); nothing was published`)
    }
    const cursor = client.query(new Cursor(query, [], { types: asText, rowMode: 'array' }))
    // An error between reads is emitted rather than given to a read callback; the next read reports it.
    let between: Error | undefined
    cursor.on('error', (error: Error) => {
      between = error
    })
    let fields: FieldDef[] | undefined
    let appender: Awaited<ReturnType<typeof ctx.duck.connection.createAppender>> | undefined
    let total = 0
    for (;;) {
      const batch = between ? { error: between } : await readBatch(cursor, batchRows).catch((error: unknown) => ({ error }))
      if (signal.aborted) return failure('cancelled', false, 'aborted')
      if ('error' in batch) return queryFailure(serverError([batch.error, between, dropped]) ?? batch.error, dropped, connection, total)
      if (fields === undefined) {
        fields = batch.fields
        if (new Set(fields.map((f) => f.name)).size !== fields.length) return invalid(`${label}: the query returns two columns with the same name (${fields.map((f) => f.name).join(', ')}); give them aliases`)
        if (fields.length === 0) return invalid(`${label}: the query returns no columns`)
        await ctx.duck.run(`CREATE TABLE ${SOURCE_TABLE} (${fields.map((f) => `${sqlIdent(f.name)} VARCHAR`).join(', ')})`)
        appender = await ctx.duck.connection.createAppender(SOURCE_TABLE)
      }
      for (const row of batch.rows) {
        for (const value of row) {
          if (value === null || value === undefined) appender!.appendNull()
          else appender!.appendVarchar(String(value))
        }
        appender!.endRow()
      }
      total += batch.rows.length
      if (batch.rows.length < batchRows) break
    }
    appender!.closeSync()
    await cursor.close().catch(() => undefined)
    ctx.log.info(`${label}: read ${total} rows`)
    const names = fields!.map((f) => f.name)
    const plans = planColumns(names, (_n, i) => ({ type: TYPE_OF_OID[fields![i]!.dataTypeID] ?? 'string', source: 'text' }), () => 'text', ctx, label)
    if ('missing' in plans) return dataInvalid(missingColumnsMessage(label, plans.missing, names))
    const select = typedSelect(plans, (p) => sqlIdent(p.name), `(SELECT *, rowid AS __ord FROM ${SOURCE_TABLE})`, { extraColumns: '__ord' })
    await ctx.duck.run(`CREATE TABLE ${LOADED} AS ${select}`)
    await ctx.duck.run(`DROP TABLE ${SOURCE_TABLE}`)
    return {
      plans,
      hasOrd: true,
      parts: [{
        source: label,
        unit: 'row',
        firstRowid: 0,
        endRowid: total,
        rejects: [],
        async locate(rows) {
          return new Map(rows.map((r) => [r.rowid, { line: (r.ord ?? 0) + 1, raw: null }]))
        },
      }],
    }
  } finally {
    signal.removeEventListener('abort', stop)
    await client.end().catch(() => undefined)
  }
}

function readBatch(cursor: Cursor, rows: number): Promise<{ rows: unknown[][]; fields: FieldDef[] }> {
  return new Promise((resolve, reject) => {
    cursor.read(rows, (error, result, meta) => (error ? reject(error) : resolve({ rows: result as unknown[][], fields: meta.fields })))
  })
}

/** The server's own message (with its SQLSTATE) among what the driver reported, rather than a socket error such as EPIPE that followed it. */
function serverError(errors: ReadonlyArray<unknown>): unknown {
  return errors.find((e) => typeof (e as { code?: unknown } | undefined)?.code === 'string' && /^[0-9A-Z]{5}$/.test((e as { code: string }).code))
}

/** SQL errors in the query itself are not retried; a lost connection or a server going away is. */
function queryFailure(error: unknown, dropped: Error | undefined, connection: { name: string; url: string }, rowsRead: number): ReadFailure {
  const code = (error as { code?: unknown }).code
  const message = scrub(errorText(error), connection.url)
  const sqlClass = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code.slice(0, 2) : undefined
  const transient = sqlClass === undefined || ['08', '40', '53', '57', '58', 'XX'].includes(sqlClass)
  if (transient || dropped) {
    return unreachable(`connection ${connection.name} failed after ${rowsRead} rows were read (${message}); nothing was published`)
  }
  return invalid(`the query on connection ${connection.name} failed: ${message}${typeof code === 'string' ? ` (SQLSTATE ${code})` : ''}`)
}

/** Never show a connection URL's password, should a driver message quote it. */
function scrub(text: string, url: string): string {
  try {
    const password = new URL(url).password
    return password ? text.replaceAll(decodeURIComponent(password), '***') : text
  } catch {
    return text
  }
}
