/** Anything that runs SQL: a pool, or a client inside a transaction. Store functions take one of these. */
import type { QueryResultRow } from 'pg'

export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>
}
