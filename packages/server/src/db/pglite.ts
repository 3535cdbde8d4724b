import { PGlite } from '@electric-sql/pglite'
import { DataDirectoryError, inspectDataDirectory } from './data-directory.js'
import type { Database, Queryable } from './port.js'

/**
 * Embedded PostgreSQL (PGlite, WebAssembly): the default database. `dataDir` is a
 * directory on disk (created when missing); without it, the data lives in memory. A path
 * that is a file, a non-empty directory without a database, a database of another
 * PostgreSQL version, or one too damaged to open is refused with an error that names it
 * (it is never initialised over).
 * One process at a time may open a data directory. Pass a `PGlite` instance of your own
 * to share it with the app (its transactions can then carry `writeWith`); closing the
 * server's database then leaves it open.
 *
 * @example
 * const sync = createSyncHandler({ database: openPGlite('./.changecast'), authenticate })
 */
export async function openPGlite(dataDir?: string | PGlite): Promise<Database> {
  const owned = !(dataDir instanceof PGlite)
  const db = dataDir instanceof PGlite ? dataDir : await create(dataDir)
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

async function create(dataDir: string | undefined): Promise<PGlite> {
  if (dataDir === undefined || dataDir.startsWith('memory://')) return PGlite.create(dataDir ?? 'memory://')
  inspectDataDirectory(dataDir)
  try {
    return await PGlite.create(dataDir)
  } catch (error) {
    const reason = (error as Error)?.message ?? String(error)
    throw new DataDirectoryError(
      `could not open the data directory ${dataDir}: it is damaged or not PGlite's (${reason})`,
    )
  }
}
