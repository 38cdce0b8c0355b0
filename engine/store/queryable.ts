/** Anything that runs SQL: a pool, or a client inside a transaction. Store functions take one of these. */
import type { QueryResultRow } from 'pg'

export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>
  /**
   * The database this handle reaches: the same object for a Db and every transaction of it. Caches
   * are kept per scope (see perDatabase); a handle without one is its own scope.
   */
  readonly scope?: object
}

/**
 * A cache per database: `cacheFor(q)` is the one of q's database, made by `make` on first use and
 * dropped with the database's handle. A process that talks to two databases (tests, a migration
 * tool) never sees one's entries in the other, although both number their rows from 1.
 */
export function perDatabase<T>(make: () => T): (q: Queryable) => T {
  const caches = new WeakMap<object, T>()
  return (q) => {
    const scope = q.scope ?? q
    let cache = caches.get(scope)
    if (cache === undefined) caches.set(scope, (cache = make()))
    return cache
  }
}
