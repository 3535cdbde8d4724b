import { PGlite } from '@electric-sql/pglite'
import type { Database, Queryable } from './port.js'

/**
 * Embedded PostgreSQL (PGlite, WebAssembly): the default database. `dataDir` is a
 * directory on disk (created when missing); without it, the data lives in memory.
 * One process at a time may open a data directory. Pass a `PGlite` instance of your own
 * to share it with the app (its transactions can then carry `writeWith`); closing the
 * server's database then leaves it open.
 *
 * @example
 * const sync = createSyncHandler({ database: openPGlite('./.changecast'), authenticate })
 */
export async function openPGlite(dataDir?: string | PGlite): Promise<Database> {
  const owned = !(dataDir instanceof PGlite)
  const db = dataDir instanceof PGlite ? dataDir : await PGlite.create(dataDir ?? 'memory://')
  const queryable = (target: Pick<PGlite, 'query'>): Queryable => ({
    query: async <R>(sql: string, params?: readonly unknown[]) =>
      (await target.query<R>(sql, params as unknown[] | undefined)).rows,
  })
  return {
    kind: 'pglite',
    ...queryable(db),
    exec: async (sql) => {
      await db.exec(sql)
    },
    // PGlite runs one transaction at a time; queries outside wait for it.
    transaction: (body) => db.transaction((tx) => body(queryable(tx))),
    async listen(channel, onNotify) {
      const stop = await db.listen(channel, () => onNotify())
      onNotify()
      return stop
    },
    close: async () => {
      if (owned) await db.close()
    },
  }
}
