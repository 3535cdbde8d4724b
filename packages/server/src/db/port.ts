/** Runs SQL: the part of a database (or of one of its transactions) the server uses. */
export interface Queryable {
  /** One statement with `$1`-style parameters; returns its rows. */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>
}

/**
 * The tiny database port the server is written against: PostgreSQL (`pg`) and embedded
 * PGlite implement it, so one SQL codebase serves both.
 */
export interface Database extends Queryable {
  /** `postgres` or `pglite`. */
  readonly kind: 'postgres' | 'pglite'
  /** Runs several statements (no parameters), e.g. a migration. */
  exec(sql: string): Promise<void>
  /** Runs `body` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(body: (tx: Queryable) => Promise<T>): Promise<T>
  /**
   * Calls `onNotify` for every `NOTIFY` on `channel`, and once each time the listening
   * connection is (re)established (notifications may have been missed meanwhile). Returns
   * a function that stops listening.
   */
  listen(channel: string, onNotify: () => void): Promise<() => Promise<void>>
  close(): Promise<void>
}
