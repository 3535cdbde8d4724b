import { readdirSync, readFileSync, statSync } from 'node:fs'

/** The PostgreSQL major version of the bundled PGlite (checked by a test against a new data directory). */
export const PGLITE_POSTGRES_VERSION = '18'

/** A data directory that cannot be used: the message names it and says why, in one line. */
export class DataDirectoryError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'DataDirectoryError'
  }
}

/**
 * What a PGlite data directory holds, before it is opened: nothing yet (`new`: created on
 * open), a database that was closed (`existing`), or one whose last process did not stop
 * (`unclean`: PostgreSQL recovers it on open). Throws {@link DataDirectoryError} for a path
 * that is a file, a non-empty directory that holds no database, or a database of another
 * PostgreSQL version — which PGlite would otherwise initialise over.
 */
export function inspectDataDirectory(dir: string): 'new' | 'existing' | 'unclean' {
  let entries: string[]
  try {
    if (!statSync(dir).isDirectory()) throw new DataDirectoryError(`${dir} is a file, not a data directory`)
    entries = readdirSync(dir)
  } catch (error) {
    if (error instanceof DataDirectoryError) throw error
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'new'
    throw new DataDirectoryError(`cannot read the data directory ${dir}: ${(error as Error).message}`)
  }
  if (entries.length === 0) return 'new'
  if (!entries.includes('PG_VERSION')) {
    throw new DataDirectoryError(
      `${dir} is not empty and holds no database (${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}): give a new or empty directory`,
    )
  }
  const version = readFileSync(`${dir}/PG_VERSION`, 'utf8').trim()
  if (version !== PGLITE_POSTGRES_VERSION) {
    throw new DataDirectoryError(
      `${dir} holds a PostgreSQL ${version} database, and PGlite is PostgreSQL ${PGLITE_POSTGRES_VERSION}: use --database-url for a PostgreSQL server, or a new directory`,
    )
  }
  return entries.includes('postmaster.pid') ? 'unclean' : 'existing'
}
